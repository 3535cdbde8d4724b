/** A random id for a context (tab, worker): a UUID where available. */
export function randomId(): string {
  const crypto = globalThis.crypto
  if (crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  let id = ''
  for (let i = 0; i < 4; i++) id += Math.random().toString(36).slice(2, 10)
  return id
}
