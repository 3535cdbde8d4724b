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
 * chunks). Linear in the size of the stream; an event larger than `maxBytes` characters
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
  let buffer = ''
  // Characters of `buffer` already searched for a line end.
  let scanned = 0
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
      buffer += decoder.decode(value, { stream: true })
      let start = 0
      if (skipLF && buffer.length > 0) {
        if (buffer.charCodeAt(0) === 10) start = scanned = 1
        skipLF = false
      }
      for (let i = Math.max(scanned, start); i < buffer.length; i++) {
        const char = buffer.charCodeAt(i)
        if (char !== 10 && char !== 13) continue
        const line = buffer.slice(start, i)
        if (char === 13) {
          if (i + 1 === buffer.length) skipLF = true
          else if (buffer.charCodeAt(i + 1) === 10) i++
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
      buffer = buffer.slice(start)
      scanned = buffer.length
      if (size + buffer.length > maxBytes) {
        throw new ProtocolViolation(`A stream event from the sync server is over the ${maxBytes}-byte limit`)
      }
    }
  } finally {
    void reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}
