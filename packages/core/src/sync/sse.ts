/** One Server-Sent Event. */
export interface ServerEvent {
  event: string
  data: string
  id?: string
}

/**
 * Parses a `text/event-stream` body into events, following the HTML spec's rules for
 * fields, comments and line endings. Works over `fetch` (so requests can carry headers,
 * unlike `EventSource`), in pages, workers and Node.
 */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerEvent> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let event = ''
  let data: string[] = []
  let id: string | undefined
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let newline: number
      while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1))
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id }
          event = ''
          data = []
          continue
        }
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        const raw = colon === -1 ? '' : line.slice(colon + 1)
        const content = raw.startsWith(' ') ? raw.slice(1) : raw
        if (field === 'event') event = content
        else if (field === 'data') data.push(content)
        else if (field === 'id') id = content
      }
    }
  } finally {
    reader.releaseLock()
  }
}
