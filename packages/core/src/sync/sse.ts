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
  let parts: string[] = []
  let partial = 0
  // The previous chunk ended with CR: an LF starting this one belongs to it.
  let skipLF = false
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
      let start = 0
      if (skipLF && text.length > 0) {
        if (text.charCodeAt(0) === 10) start = 1
        skipLF = false
      }
      for (let i = start; i < text.length; i++) {
        const char = text.charCodeAt(i)
        if (char !== 10 && char !== 13) continue
        let line = text.slice(start, i)
        if (parts.length > 0) {
          parts.push(line)
          line = parts.join('')
          parts = []
          partial = 0
        }
        if (char === 13) {
          if (i + 1 === text.length) skipLF = true
          else if (text.charCodeAt(i + 1) === 10) i++
        }
        start = i + 1
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id }
          event = ''
          data = []
          size = 0
          continue
        }
        if (line.charCodeAt(0) === 58 /* : */) continue
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        let content = colon === -1 ? '' : line.slice(colon + 1)
        if (content.charCodeAt(0) === 32) content = content.slice(1)
        if (field === 'event') event = content
        else if (field === 'data') {
          data.push(content)
          size += content.length + 1
        } else if (field === 'id' && !content.includes('\0')) id = content
      }
      if (start < text.length) {
        parts.push(text.slice(start))
        partial += text.length - start
      }
      if (size + partial > maxBytes) {
        throw new ProtocolViolation(`A stream event from the sync server is over the ${maxBytes}-byte limit`)
      }
    }
  } finally {
    void reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}
