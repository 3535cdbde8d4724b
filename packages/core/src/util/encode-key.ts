/**
 * Encodes an IndexedDB key as a string such that two keys get the same string exactly
 * when `indexedDB.cmp` says they are equal. Used to index keys in maps and sets.
 */
export function encodeKey(key: unknown): string {
  switch (typeof key) {
    case 'number':
      // -0 and 0 are the same key; String(-0) is '0'.
      return 'n' + String(key)
    case 'string':
      return 's' + key
    case 'object':
      if (key instanceof Date) return 'd' + String(key.getTime())
      if (Array.isArray(key)) return 'a' + JSON.stringify(key.map(encodeKey))
      if (key instanceof ArrayBuffer) return 'b' + hex(new Uint8Array(key))
      if (ArrayBuffer.isView(key)) return 'b' + hex(new Uint8Array(key.buffer, key.byteOffset, key.byteLength))
  }
  return 'x' + String(key)
}

function hex(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) out += (byte < 16 ? '0' : '') + byte.toString(16)
  return out
}

/**
 * The string form of a key used by `'table:key'` topics: numbers and strings as
 * written, dates as ISO strings, compound keys joined with `,`.
 */
export function keyToString(key: unknown): string {
  if (typeof key === 'string') return key
  if (typeof key === 'number') return String(key)
  if (key instanceof Date) return key.toISOString()
  if (Array.isArray(key)) return key.map(keyToString).join(',')
  if (key instanceof ArrayBuffer || ArrayBuffer.isView(key)) return encodeKey(key).slice(1)
  return JSON.stringify(key) ?? ''
}
