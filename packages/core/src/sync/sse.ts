import { LIMITS, ProtocolViolation } from './protocol.js'

/** One Server-Sent Event. */
export interface ServerEvent {
  event: string
  data: string
  id?: string
}

/**
 * Parses a `text/event-stream` body into events, following the HTML spec's rules for
 * fields, comments and line endings (CR, LF or CRLF, also when a CRLF is split across
 * chunks). Linear in the size of the stream, whatever the size of its chunks (a line's
 * pieces are joined once, at its end); an event larger than `maxBytes` characters
 * is a {@link ProtocolViolation}. `onChunk` is called for every chunk read (heartbeats
 * included), so a caller can tell a quiet stream from a dead one. Works over `fetch` (so
 * requests can carry headers, unlike `EventSource`), in pages, workers and Node.
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
  { maxBytes = LIMITS.replyBytes, onChunk }: { maxBytes?: number; onChunk?: () => void } = {},
): AsyncGenerator<ServerEvent> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  // The current line's text from earlier chunks (joined once, when its end arrives).
  let line = ''
  // The previous chunk ended with CR: an LF starting this one belongs to it.
  let cr = false
  let event = ''
  let data: string[] = []
  let size = 0
  let id: string | undefined
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      onChunk?.()
      const text = decoder.decode(value, { stream: true })
      let start = cr && text[0] === '\n' ? 1 : 0
      cr = false
      for (let i = start; i < text.length; i++) {
        const char = text[i]
        if (char !== '\n' && char !== '\r') continue
        const full = line + text.slice(start, i)
        line = ''
        if (char === '\r') {
          if (i + 1 === text.length) cr = true
          else if (text[i + 1] === '\n') i++
        }
        start = i + 1
        if (full === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id }
          event = ''
          data = []
          size = 0
        } else if (full[0] !== ':') {
          // `field: value` (one space after the colon is dropped), or a field alone.
          const [, field, content = ''] = /^([^:]*)(?::\x20?([^]*))?$/.exec(full)!
          if (field === 'event') event = content
          else if (field === 'data') {
            data.push(content)
            size += content.length + 1
          } else if (field === 'id' && !content.includes('\0')) id = content
        }
      }
      line += text.slice(start)
      if (size + line.length > maxBytes)
        throw new ProtocolViolation(`A stream event is over the ${maxBytes}-byte limit`)
    }
  } finally {
    void reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}
