// The noisy user of `pnpm bench:server`'s noisy-neighbour case, as a process of its own:
// `node bench/noisy-user.mjs <server url> <authorization>`. Opens 2,000 streams (from 500
// client ids) and runs 8 pulls at once, each asking for every batch, again as soon as it is
// answered; 429s are not honoured. On SIGTERM it prints what it got, as one JSON line.
import http from 'node:http'

const [url, authorization] = process.argv.slice(2)
const headers = { authorization }
const counts = { pulls: 0, refused: 0, bytes: 0, streams: 0, streamsRefused: 0 }
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
for (let i = 0; i < 2000; i++) {
  const request = http.get(
    `${url}/stream?v=2&since=0&clientId=noisy-stream-${i % 500}`,
    { agent, headers },
    (response) => {
      if (response.statusCode === 200) counts.streams++
      else counts.streamsRefused++
      response.resume()
    },
  )
  request.on('error', () => undefined)
}
let flooding = true
for (let i = 0; i < 8; i++) {
  void (async () => {
    while (flooding) {
      try {
        const response = await fetch(`${url}/pull?v=2&since=0&limit=1000000000&clientId=noisy-pull-${i}`, { headers })
        const body = await response.arrayBuffer()
        if (response.status === 429) counts.refused++
        else {
          counts.pulls++
          counts.bytes += body.byteLength
        }
      } catch {
        // The server may close connections when it stops; keep flooding.
      }
    }
  })()
}
process.once('SIGTERM', () => {
  flooding = false
  console.log(JSON.stringify(counts))
  process.exit(0)
})
