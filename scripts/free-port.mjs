// A TCP port nobody listens on at the moment, on 127.0.0.1.
import { createServer } from 'node:net'

/** Asks the OS for a free port on 127.0.0.1 and releases it. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}
