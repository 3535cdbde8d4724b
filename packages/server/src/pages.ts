import type { Queryable } from './db/port.js'
import type { Names } from './names.js'

/** Options of cacheable catch-up pages (see `pages` in `createSyncHandler`). */
export interface PageOptions {
  /** Revisions each page spans: pages are (k × revisions, (k + 1) × revisions]. @default 1000 */
  revisions?: number
  /**
   * Milliseconds a page address stays valid, about (addresses are cut to a grid of this
   * step, so that everyone in one step gets the same; each is valid one to two steps).
   * A user who loses a scope may read its pages for that long through an address given
   * before. @default 600000 (10 minutes)
   */
  ttl?: number
}

/** What a page address names, all signed. */
export interface PageAddress {
  epoch: string
  /** The scopes read (sorted), or undefined for every scope. */
  scopes?: readonly string[]
  from: number
  to: number
  /** The log's last batch at or before `to` (a hash of it): a restored log cannot be taken for this one. */
  mark: string
  /** Expiry, ms since the epoch. */
  exp: number
}

const encoder = new TextEncoder()
const base64url = (bytes: ArrayBuffer): string =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '')

/**
 * Signs and checks page addresses with the database's page key (every instance on it shares
 * it), with HMAC-SHA-256 (WebCrypto: any runtime).
 */
export class Pages {
  readonly revisions: number
  readonly ttl: number
  readonly #key: Promise<CryptoKey>

  constructor(db: Queryable, t: Names, options: PageOptions = {}) {
    this.revisions = options.revisions ?? 1000
    this.ttl = options.ttl ?? 600_000
    if (!Number.isInteger(this.revisions) || this.revisions < 1) {
      throw new TypeError('pages.revisions must be a positive integer')
    }
    if (!(this.ttl >= 1000)) throw new TypeError('pages.ttl must be at least 1000 ms')
    this.#key = pageKey(db, t)
  }

  /** Resolves once the key is read (or rejects with why not). */
  get ready(): Promise<unknown> {
    return this.#key
  }

  /** The page that starts at `since`, when `since` is a page boundary and the page is whole by `head`. */
  pageAt(since: number, head: number): { from: number; to: number } | undefined {
    const to = since + this.revisions
    return since % this.revisions === 0 && to <= head ? { from: since, to } : undefined
  }

  /** The page boundary after `since`. */
  boundaryAfter(since: number): number {
    return (Math.floor(since / this.revisions) + 1) * this.revisions
  }

  /** An expiry on the grid: the same for everyone asking within one step, at least one step away. */
  expiry(now = Date.now()): number {
    return (Math.floor(now / this.ttl) + 2) * this.ttl
  }

  /** The address's query (relative to the pull's path), signed. */
  async query(address: PageAddress): Promise<string> {
    const params = new URLSearchParams({
      v: '2',
      epoch: address.epoch,
      from: String(address.from),
      to: String(address.to),
      mark: address.mark,
      exp: String(address.exp),
    })
    for (const scope of address.scopes ?? []) params.append('scope', scope)
    if (address.scopes?.length === 0) params.set('noscope', '1')
    params.set('sig', await this.#sign(address))
    return params.toString()
  }

  /** The address a query names, when its signature holds (expiry not checked here); else undefined. */
  async parse(search: URLSearchParams): Promise<PageAddress | undefined> {
    const number = (name: string) => {
      const text = search.get(name)
      return text !== null && /^\d{1,16}$/.test(text) ? Number(text) : undefined
    }
    const [from, to, exp] = [number('from'), number('to'), number('exp')]
    const epoch = search.get('epoch')
    const mark = search.get('mark')
    const sig = search.get('sig')
    if (from === undefined || to === undefined || exp === undefined || !epoch || !mark || !sig) return undefined
    const listed = search.getAll('scope')
    const scopes = listed.length > 0 ? listed : search.get('noscope') === '1' ? [] : undefined
    const address: PageAddress = { epoch, scopes, from, to, mark, exp }
    return (await this.#sign(address)) === sig ? address : undefined
  }

  async #sign({ epoch, scopes, from, to, mark, exp }: PageAddress): Promise<string> {
    const text = JSON.stringify([epoch, scopes ?? null, from, to, mark, exp])
    return base64url(await crypto.subtle.sign('HMAC', await this.#key, encoder.encode(text)))
  }
}

/** The hash that names the log's last batch at or before `rev` (empty: none). */
export async function markOf(db: Queryable, t: Names, rev: number): Promise<string> {
  const [batch] = await db.query<{ tx: string; at: string | number; rev: string | number }>(
    `select rev, tx, at from ${t.batches} where rev <= $1 order by rev desc limit 1`,
    [rev],
  )
  if (!batch) return '-'
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(`${batch.rev} ${batch.tx} ${batch.at}`))
  return base64url(digest.slice(0, 12))
}

/** The page key of this database: made by the first instance that needs it, then shared. */
async function pageKey(db: Queryable, t: Names): Promise<CryptoKey> {
  const fresh = base64url(crypto.getRandomValues(new Uint8Array(32)).buffer)
  await db.query(`update ${t.meta} set page_key = $1 where id = 1 and page_key is null`, [fresh])
  const [row] = await db.query<{ page_key: string }>(`select page_key from ${t.meta} where id = 1`)
  return crypto.subtle.importKey('raw', encoder.encode(row!.page_key), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ])
}
