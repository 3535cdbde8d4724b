// @vitest-environment happy-dom
import Dexie, { add, type Table } from 'dexie'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { changecast, InvalidOptionsError, type AnyTables, type Feed, type SyncAdapter } from '@changecast/core'
import { httpSync } from '@changecast/core/sync'
import { mountDevtools } from '@changecast/devtools'
import { createSyncServer } from '@changecast/testing'

type Note = { id: number; text: string }
let counter = 0

describe('mountDevtools (Node, happy-dom, fake-indexeddb)', () => {
  const cleanup: Array<() => unknown> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
    document.body.replaceChildren()
  })
  async function open(sync?: SyncAdapter) {
    const db = new Dexie(`devtools-${++counter}-${Date.now()}`) as Dexie & { notes: Table<Note, number> }
    db.version(1).stores({ notes: 'id' })
    const feed = changecast(db, sync ? { sync } : {}) as unknown as Feed<AnyTables>
    await db.open()
    cleanup.push(
      () => Dexie.delete(db.name),
      () => db.close(),
      () => feed.close(),
    )
    return { db, feed }
  }
  const shadow = () => document.querySelector('[data-changecast-devtools]')?.shadowRoot
  const byTestId = (id: string) => [...(shadow()?.querySelectorAll(`[data-testid="${id}"]`) ?? [])]

  it('refuses bad options with an InvalidOptionsError, and subscribes to nothing', async () => {
    const { feed } = await open()
    const before = feed.listenerCount
    for (const options of [{ position: 'center' }, { target: 'body' }, { keep: 0 }, { keep: 1.5 }]) {
      expect(() => mountDevtools(feed, options as never)).toThrow(InvalidOptionsError)
    }
    expect(feed.listenerCount).toBe(before)
    expect(shadow()).toBeUndefined()
  })

  it('keeps the events committed while the panel loads, and shows them in a shadow root', async () => {
    const { db, feed } = await open()
    const target = document.createElement('div')
    document.body.append(target)
    const handle = mountDevtools(feed, { target })
    cleanup.push(() => handle.unmount())
    await db.notes.put({ id: 1, text: 'before the panel loaded' })
    await handle.ready
    await db.notes.put({ id: 1, text: 'after' })
    expect(target.querySelector('[data-changecast-devtools]')).not.toBeNull()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const events = byTestId('event')
    expect(events.map((event) => event.getAttribute('data-type'))).toEqual(['update', 'create'])
    expect(events[0]!.textContent).toContain('text: "before the panel loaded" → "after"')
    // Nothing of the panel is in the light DOM.
    expect(document.querySelector('[data-testid="event"]')).toBeNull()
  })

  it('shows a field update as such, with the modification that made a path, and which paths came from whom', async () => {
    const { db, feed } = await open()
    const target = document.createElement('div')
    document.body.append(target)
    const handle = mountDevtools(feed, { target })
    cleanup.push(() => handle.unmount())
    await handle.ready
    const votes = db.notes as unknown as Table<{ id: number; text: string; votes: number }, number>
    await votes.put({ id: 1, text: 'a', votes: 0 })
    await votes.update(1, { votes: add(1) })
    await votes.put({ id: 1, text: 'b', votes: 1 })
    await vi.waitFor(() => expect(byTestId('event')).toHaveLength(3))
    const [whole, field] = byTestId('event')
    expect(field!.querySelector('[data-testid="event-merge"]')?.textContent).toBe('fields')
    expect(field!.textContent).toContain('votes: 0 → 1 (+1)')
    // A put() stores a whole value: no merge chip.
    expect(whole!.querySelector('[data-testid="event-merge"]')).toBeNull()
    ;(field!.querySelector('button.entity') as HTMLButtonElement).click()
    await vi.waitFor(() => expect(byTestId('history-writer')).not.toHaveLength(0))
    const writers = byTestId('history-writer')
    expect(writers.map((item) => item.getAttribute('data-path'))).toEqual(['id', 'text', 'votes'])
    expect(writers[2]!.textContent).toMatch(/^votes ← local \S+ \(\+1\)/)
  })

  it('unmounted before it loads: nothing is mounted and no listener stays', async () => {
    const { feed } = await open()
    const before = feed.listenerCount
    const handle = mountDevtools(feed)
    handle.unmount()
    await handle.ready
    expect(shadow()).toBeUndefined()
    expect(feed.listenerCount).toBe(before)
  })

  it('keeps at most `keep` events, and says when the feed does not sync', async () => {
    const { db, feed } = await open()
    const handle = mountDevtools(feed, { keep: 3, open: true })
    cleanup.push(() => handle.unmount())
    await handle.ready
    await db.notes.bulkPut([1, 2, 3, 4, 5].map((id) => ({ id, text: `n${id}` })))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(byTestId('timeline-total')[0]!.textContent).toBe('3')
    expect(byTestId('devtools-sync')[0]!.textContent).toContain('This feed does not sync.')
  })

  it('regression: a commit of 200,000 events is shown (no spread of the batch overflows the stack)', async () => {
    const { db, feed } = await open()
    const errors: unknown[] = []
    cleanup.push(feed.onError((error) => errors.push(error)))
    const handle = mountDevtools(feed, { open: true })
    cleanup.push(() => handle.unmount())
    await handle.ready
    await db.notes.bulkAdd(Array.from({ length: 200_000 }, (_, id) => ({ id, text: 'x' })))
    await vi.waitFor(() => expect(byTestId('timeline-total')[0]!.textContent).toBe('10000'), { timeout: 30_000 })
    expect(errors).toEqual([])
  }, 180_000)

  it('regression: a paused panel holds at most `keep` events, and says how many it received', async () => {
    const { db, feed } = await open()
    const handle = mountDevtools(feed, { keep: 3, open: true })
    cleanup.push(() => handle.unmount())
    await handle.ready
    const pause = byTestId('timeline-pause')[0] as HTMLButtonElement
    pause.click()
    await db.notes.bulkPut([1, 2, 3, 4, 5].map((id) => ({ id, text: `n${id}` })))
    await db.notes.put({ id: 6, text: 'n6' })
    await vi.waitFor(() =>
      expect(byTestId('timeline-held')[0]!.textContent).toBe('(6 received while paused; the newest 3 are kept)'),
    )
    pause.click()
    await vi.waitFor(() => expect(byTestId('timeline-total')[0]!.textContent).toBe('3'))
    expect(byTestId('event').map((event) => event.getAttribute('data-key'))).toEqual(['6', '4', '5'])
  })

  it('shows the sync status, the outbox and the rejections of a syncing feed, and dismisses one', async () => {
    const server = createSyncServer({ reject: (change) => (change.key === 2 ? 'note 2 is read-only' : undefined) })
    const original = globalThis.fetch
    globalThis.fetch = (input, init) => {
      const request = new Request(input, init)
      return request.url.startsWith('https://sync.test') ? server.handle(request) : original(input, init)
    }
    cleanup.push(() => (globalThis.fetch = original))
    const { db, feed } = await open(httpSync({ url: 'https://sync.test', pull: false }))
    const handle = mountDevtools(feed, { open: true })
    cleanup.push(() => handle.unmount())
    await handle.ready
    await db.notes.put({ id: 1, text: 'accepted' })
    await db.notes.put({ id: 2, text: 'refused' })
    await feed.sync!.flush()
    const text = (id: string) => byTestId(id)[0]?.textContent
    await vi.waitFor(() => {
      expect(text('devtools-sync-outbox')).toBe('0')
      expect(text('devtools-sync-answered-local-rev')).toBe('2')
      // The code, the reason, and what was refused with the value that was sent.
      expect(text('devtools-rejections')).toContain('rev 2 (rejected): note 2 is read-only')
      expect(text('devtools-rejections')).toContain('create notes 2: {"id":2,"text":"refused"}')
    })
    expect(text('devtools-sync-last-contact')).toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/)
    expect(text('devtools-set-aside')).toBe('Nothing set aside.')
    const dismiss = byTestId('devtools-rejections')[0]!.querySelector('button')!
    dismiss.click()
    await vi.waitFor(() => expect(text('devtools-rejections')).toBe('No rejection.'))
  })

  it("shows a set-aside commit, and what Retry answers when the app's sync has no setAside part", async () => {
    const db = new Dexie(`devtools-aside-${++counter}-${Date.now()}`) as Dexie & { notes: Table<Note, number> }
    db.version(1).stores({ notes: 'id' })
    const feed = changecast(db, {
      sync: httpSync({ url: 'https://sync.test', pull: false }),
    }) as unknown as Feed<AnyTables>
    await db.open()
    cleanup.push(
      () => Dexie.delete(db.name),
      () => db.close(),
      () => feed.close(),
    )
    const handle = mountDevtools(feed, { open: true })
    cleanup.push(() => handle.unmount())
    await handle.ready
    // A value JSON cannot carry: the commit is set aside before any request.
    await db.notes.put({ id: 1, text: 10n as unknown as string })
    const text = (id: string) => byTestId(id)[0]?.textContent
    await vi.waitFor(() => expect(text('devtools-set-aside')).toMatch(/^push rev 1: .*bigint/))
    byTestId('devtools-set-aside')[0]!.querySelector('button')!.click()
    await vi.waitFor(() =>
      expect(text('devtools-action-error')).toBe('retry() needs httpSync({ setAside: setAsideActions }).'),
    )
  })
})
