// Random and mutated protocol requests, from a seed: the request fuzzer of fuzz.test.ts.
// Each request starts from a valid one (a push, pull, stream, snapshot, the info route or
// a path that does not exist) and is mutated: fields removed or replaced by hostile values
// (prototype names, control characters, huge and deep values, wrong types), the JSON
// truncated or garbled, queries with hostile or repeated parameters, unknown users.

/** One request to send, described as data (so that a failure prints it). */
export interface FuzzRequest {
  kind: 'push' | 'pull' | 'stream' | 'snapshot' | 'page' | 'info' | 'other'
  method: string
  /** Path and query, e.g. `/pull?v=2&since=0`. */
  path: string
  headers: Record<string, string>
  body?: string
}

type Random = () => number

const USERS = ['u1', 'u2', 'u3']
const TABLES = ['todos', 'notes']
const PROJECTS = ['p1', 'p2']

/** Strings a server must survive anywhere a string goes. */
const HOSTILE_STRINGS = [
  '',
  ' ',
  'constructor',
  '__proto__',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'a\u0000b',
  '\u0000',
  '\u001f',
  '\u007f',
  '\ud800',
  '\udfff',
  'x'.repeat(65),
  'x'.repeat(201),
  'y'.repeat(10_000),
  '%00',
  "'; drop table changecast_batches; --",
  '$1',
  '\\',
  '"',
  '😀',
  'é',
  '\u2028',
  '0',
  '-1',
  '1e3',
  'NaN',
  'null',
]
/** Numbers likewise. */
const HOSTILE_NUMBERS = [
  0,
  -0,
  -1,
  1,
  1.5,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER,
]

/** Percent-encodes; a lone surrogate (which cannot be) becomes its bytes, an invalid UTF-8 sequence. */
const encode = (text: string) => {
  try {
    return encodeURIComponent(text)
  } catch {
    return '%ED%A0%80'
  }
}
const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)]!
const chance = (random: Random, p: number) => random() < p

/** A random JSON value, `depth` levels at most (a few far deeper, to test nesting limits). */
function randomValue(random: Random, depth = 3): unknown {
  const roll = random()
  if (roll < 0.15) return pick(random, HOSTILE_STRINGS)
  if (roll < 0.3) return pick(random, HOSTILE_NUMBERS)
  if (roll < 0.35) return pick(random, [null, true, false])
  if (roll < 0.4) return Math.floor(random() * 100)
  if (roll < 0.42) {
    // Deeper than the protocol allows (64 levels), or just within it.
    let value: unknown = 1
    for (let i = 0, n = pick(random, [63, 64, 65, 200]); i < n; i++) value = [value]
    return value
  }
  if (roll < 0.44) return Array.from({ length: pick(random, [1000, 5000]) }, (_, i) => i)
  if (depth <= 0) return `s${Math.floor(random() * 1000)}`
  if (roll < 0.7) {
    return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1))
  }
  const object: Record<string, unknown> = {}
  for (let i = Math.floor(random() * 4); i > 0; i--) {
    object[chance(random, 0.3) ? pick(random, HOSTILE_STRINGS) : `f${i}`] = randomValue(random, depth - 1)
  }
  return object
}

/** `length` random characters (incompressible, unlike a repeated one). */
const randomText = (random: Random, length: number) =>
  Array.from({ length }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join('')

/** A key: mostly valid (numbers, strings, compound keys), sometimes not a key at all. */
function randomKey(random: Random): unknown {
  const roll = random()
  if (roll < 0.03) return randomText(random, pick(random, [400, 510, 511, 600, 3000, 10_000]))
  if (roll < 0.05) return Array.from({ length: pick(random, [50, 100, 1000]) }, () => Math.floor(random() * 1e9))
  if (roll < 0.4) return Math.floor(random() * 20)
  if (roll < 0.6) return `k${Math.floor(random() * 20)}`
  if (roll < 0.7) return [Math.floor(random() * 5), `k${Math.floor(random() * 5)}`]
  if (roll < 0.8) return pick(random, HOSTILE_STRINGS)
  if (roll < 0.85) return pick(random, HOSTILE_NUMBERS)
  return randomValue(random)
}

/** Paths of merged updates: ordinary, nested, through a string (`title`), the prototype, too deep. */
const PATHS = [
  'title',
  'project',
  'n',
  'tags',
  'meta.color',
  'title.x',
  '__proto__.polluted',
  'constructor',
  `${'d.'.repeat(80)}x`,
]
/** Dexie modifications, well-formed; the mutations below damage some. */
const OPERATIONS = [
  { add: 1 },
  { remove: 2 },
  { add: ['a'] },
  { remove: ['a'] },
  { replacePrefix: ['t', 'u'] },
  { add: -0.5 },
]

/** A valid-looking push body for `clientId`, its batches numbered from `rev`. */
function pushBody(random: Random, clientId: string, rev: number): Record<string, unknown> {
  const batches = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => {
    const changes = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
      const key = randomKey(random)
      const type = pick(random, ['create', 'update', 'delete'] as const)
      const table = chance(random, 0.9)
        ? pick(random, TABLES)
        : chance(random, 0.8)
          ? pick(random, HOSTILE_STRINGS)
          : randomText(random, pick(random, [64, 65, 3000, 10_000]))
      const value = {
        id: key,
        project: chance(random, 0.9) ? pick(random, PROJECTS) : randomValue(random, 1),
        title: 't',
      }
      if (type === 'delete') return { type, table, key }
      if (type === 'create' || chance(random, 0.6)) return { type, table, key, value }
      // A merged update (docs/protocol.md, "Merging updates"), with paths and operations that
      // may go through strings, nest past the limits, or reach for the prototype.
      const path = () => pick(random, PATHS)
      const ops = Object.fromEntries(
        Array.from({ length: Math.floor(random() * 3) }, () => [path(), pick(random, OPERATIONS)]),
      )
      return { type, table, key, value, patch: Array.from({ length: Math.floor(random() * 3) }, path), ops }
    })
    return { rev: rev + i, tx: `${clientId}.${rev + i}`, at: Date.now(), changes }
  })
  return { v: 2, clientId, batches, ...(chance(random, 0.05) ? { confirm: true } : {}) }
}

/** Replaces or removes one random node of a JSON tree (in place; the root is replaced by returning). */
function mutate(random: Random, root: unknown): unknown {
  if (root === null || typeof root !== 'object' || chance(random, 0.05)) return randomValue(random)
  // Walk down a random path.
  let parent = root as Record<string, unknown>
  for (;;) {
    const keys = Object.keys(parent)
    if (keys.length === 0) break
    const key = pick(random, keys)
    const child = parent[key]
    if (child !== null && typeof child === 'object' && chance(random, 0.6)) {
      parent = child as Record<string, unknown>
      continue
    }
    if (chance(random, 0.25)) {
      if (Array.isArray(parent)) parent.splice(Number(key), 1)
      else delete parent[key]
    } else parent[key] = randomValue(random)
    return root
  }
  parent[pick(random, HOSTILE_STRINGS)] = randomValue(random)
  return root
}

/** Damages JSON text: truncated, a character changed, or bytes that are not JSON at all. */
function garble(random: Random, text: string): string {
  const roll = random()
  if (roll < 0.3) return text.slice(0, Math.floor(random() * text.length))
  if (roll < 0.6) {
    const at = Math.floor(random() * text.length)
    return text.slice(0, at) + pick(random, ['"', '{', ']', ',', '\\', '\u0000', 'x']) + text.slice(at + 1)
  }
  if (roll < 0.8) return pick(random, ['', 'null', '[]', '{}', '1', '"x"', 'true', '{"v":2}', '\u0000'])
  return Array.from({ length: Math.floor(random() * 64) }, () => String.fromCharCode(Math.floor(random() * 256))).join(
    '',
  )
}

/** A query parameter value: valid, hostile, or absent (undefined). */
function parameter(random: Random, valid: () => string): string | undefined {
  const roll = random()
  if (roll < 0.55) return valid()
  if (roll < 0.65) return undefined
  return pick(random, [...HOSTILE_STRINGS, '0x10', '+1', '01', '1.5', '9007199254740993', '１', '-0', ' 1'])
}

function query(random: Random, parameters: Record<string, () => string>): string {
  const parts: string[] = []
  for (const [name, valid] of Object.entries(parameters)) {
    for (let copies = chance(random, 0.05) ? 2 : 1; copies > 0; copies--) {
      const value = parameter(random, valid)
      if (value !== undefined) parts.push(`${name}=${encode(value)}`)
    }
  }
  if (chance(random, 0.05)) parts.push(`${encode(pick(random, HOSTILE_STRINGS))}=1`)
  if (chance(random, 0.03)) parts.push('%E0%A4%A', '%', 'a=%ZZ')
  return parts.join('&')
}

/** `count` requests from `random`, each valid at first and then mutated (or not). */
export function* fuzzRequests(random: Random, count: number): Generator<FuzzRequest> {
  const revs = new Map<string, number>()
  for (let n = 0; n < count; n++) {
    const user = chance(random, 0.9) ? pick(random, USERS) : pick(random, HOSTILE_STRINGS)
    const clientId = chance(random, 0.9) ? `${user}-c${Math.floor(random() * 3)}` : pick(random, HOSTILE_STRINGS)
    const headers: Record<string, string> = {}
    // Header values cannot hold control characters or non-Latin-1: those users go unnamed.
    if (/^[\u0020-\u007e]*$/.test(user)) headers['x-user'] = user
    const since = () => String(Math.floor(random() * 30))
    const scope = () => (chance(random, 0.8) ? pick(random, PROJECTS) : 'p9')
    const roll = random()
    if (roll < 0.45) {
      const rev = (revs.get(clientId) ?? 0) + 1
      const body = pushBody(random, clientId, chance(random, 0.9) ? rev : 1 + Math.floor(random() * rev))
      revs.set(clientId, rev + 3)
      let text: string
      const mutation = random()
      if (mutation < 0.3) text = JSON.stringify(body)
      else if (mutation < 0.85) {
        let mutated: unknown = body
        for (let i = 1 + Math.floor(random() * 3); i > 0; i--) mutated = mutate(random, mutated)
        text = JSON.stringify(mutated) ?? 'undefined'
      } else text = garble(random, JSON.stringify(body))
      headers['content-type'] = chance(random, 0.9) ? 'application/json' : pick(random, ['text/plain', 'x/y', ''])
      const scopes = chance(random, 0.2) ? `?${query(random, { scope })}` : ''
      yield { kind: 'push', method: 'POST', path: `/push${scopes}`, headers, body: text }
    } else if (roll < 0.7) {
      const q = query(random, {
        v: () => '2',
        since,
        limit: () => String(1 + Math.floor(random() * 100)),
        clientId: () => clientId,
        scope,
      })
      yield { kind: 'pull', method: 'GET', path: `/pull?${q}`, headers }
    } else if (roll < 0.8) {
      const q = query(random, { v: () => '2', since, clientId: () => clientId, scope })
      yield { kind: 'stream', method: 'GET', path: `/stream?${q}`, headers }
    } else if (roll < 0.92) {
      const q = query(random, {
        v: () => '2',
        clientId: () => clientId,
        limit: () => String(1 + Math.floor(random() * 5)),
        rev: since,
        after: () =>
          JSON.stringify(pick(random, [[null, 'todos', '1'], ['p1', 'todos', '"k1"'], ['p1', '', ''], 1, []])),
        scope,
      })
      yield { kind: 'snapshot', method: 'GET', path: `/snapshot?${q}`, headers }
    } else if (roll < 0.935) {
      // A cacheable page's address, forged (a real one is signed by the server).
      const q = query(random, {
        v: () => '2',
        epoch: () => pick(random, ['', 'e', '0'.repeat(32)]),
        from: since,
        to: since,
        mark: () => pick(random, ['-', 'x', '']),
        exp: () => pick(random, ['0', String(Date.now() + 60_000), '9'.repeat(20), '-1']),
        sig: () => pick(random, ['', 'AAAA', 'x'.repeat(43), '%zz']),
        noscope: () => '1',
        scope,
      })
      yield { kind: 'page', method: 'GET', path: `/page?${q}`, headers }
    } else if (roll < 0.95) {
      yield { kind: 'info', method: 'GET', path: '/', headers }
    } else {
      const method = pick(random, ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'])
      const path = pick(random, [
        '/push',
        '/pull',
        '/stream',
        '/snapshot',
        '/page',
        '/x',
        '/push/',
        '//pull',
        '/%00',
        '/..%2fpush',
      ])
      yield { kind: 'other', method, path, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body: '{}' }) }
    }
  }
}
