// The devtools panel, loaded on demand by `mountDevtools`. Everything is built with DOM calls
// and `textContent`: no data ever goes through `innerHTML`.
import {
  rejectionsStore,
  type AnyTables,
  type ChangeBatch,
  type ChangeEvent,
  type ChangeSource,
  type ChangeType,
  type Feed,
  type SetAsideItem,
  type UpdateEvent,
} from '@changecast/core'
import type { DevtoolsOptions } from './index.js'
import { STYLE } from './style.js'

type Options = Required<Omit<DevtoolsOptions, 'target'>> & Pick<DevtoolsOptions, 'target'>
type Child = Node | string | null | undefined | false
type Attributes = Record<string, string | boolean | ((event: Event) => void) | undefined>

const TYPES: ChangeType[] = ['create', 'update', 'delete']
const SOURCES: ChangeSource[] = ['local', 'tab', 'remote']
/** Rows drawn at once: the newest matching events. */
const DRAW = 200

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') element.addEventListener(name.slice(2), value)
    else element.setAttribute(name, value === true ? '' : value)
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child)
  return element
}

/** Short, readable form of any value. */
function show(value: unknown): string {
  if (value === undefined) return '∅'
  try {
    return (
      JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? `${item}n` : item)) ?? typeof value
    )
  } catch {
    return Object.prototype.toString.call(value)
  }
}

function time(at: number): string {
  const date = new Date(at)
  const pad = (n: number, width = 2) => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

function lookup(value: unknown, path: string): unknown {
  let current = value
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string, unknown>)[part]
  }
  return current
}

/** A Dexie modification as people write it: `+1`, `+["a"]`, `−["b"]`, `"old/" → "new/"…`. */
function showOp(op: NonNullable<UpdateEvent['ops']>[string]): string {
  if ('add' in op) return `+${show(op.add)}`
  if ('remove' in op) return `−${show(op.remove)}`
  return `${show(op.replacePrefix[0])}… → ${show(op.replacePrefix[1])}…`
}

/**
 * What an event did, in one line: changed paths with old → new (and, for a field update,
 * the Dexie modification that made a path: the server re-applies it), or the fields.
 */
function describe(event: ChangeEvent): string {
  if (event.type === 'update') {
    return Object.entries(event.changes)
      .map(([path, next]) => {
        const op = event.ops?.[path]
        return `${path}: ${show(lookup(event.previous, path))} → ${show(next)}${op ? ` (${showOp(op)})` : ''}`
      })
      .join(', ')
  }
  const value = event.type === 'delete' ? event.previous : event.value
  if (!value || typeof value !== 'object') return show(value)
  return Object.entries(value)
    .map(([name, field]) => `${name}: ${show(field)}`)
    .join(', ')
}

const sameEntity = (event: ChangeEvent, table: string, key: string) => event.table === table && show(event.key) === key

/** Builds the panel into a shadow root; returns its teardown. */
export function createPanel(feed: Feed<AnyTables>, options: Options, backlog: ChangeBatch[]): () => void {
  const cleanups: Array<() => void> = []
  let events: ChangeEvent[] = []
  let held: ChangeEvent[] = []
  /** Events received while paused, the dropped ones included (only the newest `keep` are held). */
  let heldCount = 0
  let paused = false
  let scheduled = 0
  let inspected: { table: string; key: string } | undefined
  const filter = { table: '', types: new Set(TYPES), sources: new Set(SOURCES) }
  const counts: Record<ChangeSource, number> = { local: 0, tab: 0, remote: 0 }
  const peers = new Map<string, { events: number; heard: number; sources: Set<ChangeSource> }>()
  const tables = feed.db.tables.map((table) => table.name).filter((name) => !/^(\$|_changecast_)/.test(name))

  // --- structure -----------------------------------------------------------------------
  const host = h('div', { 'data-changecast-devtools': '' })
  const root = host.attachShadow({ mode: 'open' })
  const inline = options.target !== undefined
  const list = h('ol', { class: 'timeline', 'data-testid': 'timeline', 'aria-label': 'Change events, newest first' })
  const shown = h('span', { 'data-testid': 'timeline-shown' }, '0')
  const total = h('span', { 'data-testid': 'timeline-total' }, '0')
  const heldNote = h('span', { class: 'held', 'data-testid': 'timeline-held', hidden: true })
  const tableSelect = h(
    'select',
    {
      'aria-label': 'Table',
      'data-testid': 'filter-table',
      onchange: () => ((filter.table = tableSelect.value), draw()),
    },
    h('option', { value: '' }, 'all tables'),
    ...tables.map((table) => h('option', { value: table }, table)),
  )
  const toggles = <T extends string>(legend: string, values: T[], set: Set<T>) =>
    h(
      'fieldset',
      {},
      h('legend', {}, legend),
      ...values.map((value) =>
        h(
          'label',
          { class: `chip ${value}` },
          h('input', {
            type: 'checkbox',
            checked: true,
            'data-testid': `filter-${value}`,
            onchange: (event) => {
              if ((event.target as HTMLInputElement).checked) set.add(value)
              else set.delete(value)
              draw()
            },
          }),
          value,
        ),
      ),
    )
  const pauseButton = h(
    'button',
    {
      type: 'button',
      'aria-pressed': 'false',
      'data-testid': 'timeline-pause',
      onclick: () => {
        paused = !paused
        pauseButton.textContent = paused ? 'Resume' : 'Pause'
        pauseButton.setAttribute('aria-pressed', String(paused))
        if (!paused) {
          keep(held)
          held = []
          heldCount = 0
        }
        schedule()
      },
    },
    'Pause',
  )
  const clearButton = h(
    'button',
    { type: 'button', 'data-testid': 'timeline-clear', onclick: () => ((events = []), (held = []), schedule()) },
    'Clear',
  )
  const counters = Object.fromEntries(
    SOURCES.map((source) => [source, h('output', { 'data-testid': `devtools-count-${source}` }, '0')]),
  ) as Record<ChangeSource, HTMLOutputElement>
  const peerList = h('ul', { class: 'peers', 'data-testid': 'devtools-peers' })
  const syncSection = h('section', { 'aria-label': 'Sync', 'data-testid': 'devtools-sync' })
  const history = h('section', { 'aria-label': 'Entity history', 'data-testid': 'devtools-history', hidden: true })

  const body = h(
    'div',
    { class: 'body', id: 'changecast-devtools-body' },
    h(
      'div',
      { class: 'controls' },
      tableSelect,
      toggles('Type', TYPES, filter.types),
      toggles('Source', SOURCES, filter.sources),
      pauseButton,
      clearButton,
    ),
    h('p', { class: 'summary', 'aria-live': 'polite' }, 'Showing ', shown, ' of ', total, ' events ', heldNote),
    h(
      'div',
      { class: 'columns' },
      list,
      h(
        'div',
        { class: 'side' },
        history,
        h(
          'section',
          { 'aria-label': 'Contexts' },
          h('h3', {}, 'Heard from'),
          h(
            'dl',
            { class: 'counters' },
            ...SOURCES.flatMap((source) => [
              h('dt', { class: `chip ${source}` }, source),
              h('dd', {}, counters[source]),
            ]),
          ),
          peerList,
        ),
        syncSection,
      ),
    ),
  )
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'toggle',
      'aria-expanded': 'false',
      'aria-controls': 'changecast-devtools-body',
      'data-testid': 'devtools-toggle',
      onclick: () => setOpen(body.hidden),
    },
    'Changecast',
  )
  const panel = h(
    'div',
    {
      class: `panel ${inline ? 'inline' : `floating ${options.position}`}`,
      role: 'region',
      'aria-label': 'Changecast devtools',
      onkeydown: (event) => {
        if ((event as KeyboardEvent).key === 'Escape' && !inline) {
          setOpen(false)
          toggle.focus()
        }
      },
    },
    inline ? h('h2', { class: 'title' }, 'Changecast devtools') : toggle,
    body,
  )
  const style = h('style')
  style.textContent = STYLE
  root.append(style, panel)
  function setOpen(open: boolean) {
    body.hidden = !open
    toggle.setAttribute('aria-expanded', String(open))
    if (open) draw()
  }
  setOpen(inline || options.open)
  ;(options.target ?? document.body).append(host)
  cleanups.push(() => host.remove())

  // --- data ----------------------------------------------------------------------------
  /**
   * `list` with `more` after it, at most the newest `keep` events: never a spread of a batch
   * (a commit of 200,000 events would overflow the call stack), never more than `keep` held.
   */
  function newest(list: ChangeEvent[], more: readonly ChangeEvent[]): ChangeEvent[] {
    const room = options.keep
    const added = more.length > room ? more.slice(more.length - room) : more
    const over = list.length + added.length - room
    const next = over > 0 ? list.slice(over) : list
    for (const event of added) next.push(event)
    return next
  }
  function keep(batch: readonly ChangeEvent[]) {
    events = newest(events, batch)
  }
  function take(batch: ChangeBatch) {
    for (const event of batch.events) {
      counts[event.source]++
      if (event.source === 'local') continue
      const peer = peers.get(event.origin) ?? { events: 0, heard: 0, sources: new Set<ChangeSource>() }
      peer.events++
      peer.heard = Date.now()
      peer.sources.add(event.source)
      peers.set(event.origin, peer)
    }
    if (paused) {
      heldCount += batch.events.length
      held = newest(held, batch.events)
    } else keep(batch.events)
    schedule()
  }
  backlog.forEach(take)
  cleanups.push(feed.onBatch(take))

  function schedule() {
    if (scheduled) return
    scheduled = requestAnimationFrame(() => {
      scheduled = 0
      draw()
    })
  }
  cleanups.push(() => cancelAnimationFrame(scheduled))

  // --- drawing -------------------------------------------------------------------------
  function draw() {
    if (body.hidden) return
    const matching: ChangeEvent[] = []
    let count = 0
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i]!
      if (filter.table && event.table !== filter.table) continue
      if (!filter.types.has(event.type) || !filter.sources.has(event.source)) continue
      count++
      if (matching.length < DRAW) matching.push(event)
    }
    shown.textContent = String(Math.min(count, DRAW))
    total.textContent = String(count)
    heldNote.hidden = held.length === 0
    heldNote.textContent = !heldCount
      ? ''
      : heldCount > held.length
        ? `(${heldCount} received while paused; the newest ${held.length} are kept)`
        : `(${heldCount} held while paused)`
    const groups: HTMLElement[] = []
    for (let i = 0; i < matching.length;) {
      const tx = matching[i]!.tx
      const group: ChangeEvent[] = []
      while (i < matching.length && matching[i]!.tx === tx) group.push(matching[i++]!)
      groups.push(drawGroup(group))
    }
    list.replaceChildren(...groups)
    for (const source of SOURCES) counters[source].textContent = String(counts[source])
    peerList.replaceChildren(
      ...[...peers].map(([origin, peer]) =>
        h(
          'li',
          { 'data-testid': 'devtools-peer', 'data-origin': origin },
          h('code', { title: origin }, origin.slice(0, 8)),
          ` ${[...peer.sources].join(', ')} · ${peer.events} events · ${time(peer.heard)}`,
        ),
      ),
    )
    if (peers.size === 0) peerList.append(h('li', { class: 'empty' }, 'No other tab, worker or server yet.'))
    drawHistory()
  }

  function drawGroup(group: ChangeEvent[]): HTMLElement {
    const first = group[0]!
    return h(
      'li',
      { class: `group ${first.source}` },
      h(
        'div',
        { class: 'head' },
        h('span', { class: `chip ${first.source}`, 'data-testid': 'group-source' }, first.source),
        h('span', { title: first.tx }, `tx ${first.tx.slice(0, 8)}…${first.tx.slice(first.tx.lastIndexOf('.'))}`),
        first.rev !== undefined ? h('span', {}, `rev ${first.rev}`) : null,
        h('span', {}, time(first.at)),
        group.length > 1 ? h('span', {}, `${group.length} events`) : null,
      ),
      h('ul', {}, ...[...group].reverse().map(drawEvent)),
    )
  }

  function drawEvent(event: ChangeEvent): HTMLElement {
    const key = show(event.key)
    return h(
      'li',
      {
        class: 'event',
        'data-testid': 'event',
        'data-type': event.type,
        'data-source': event.source,
        'data-table': event.table,
        'data-key': key,
      },
      h('span', { class: `type ${event.type}` }, event.type),
      event.ops
        ? h(
            'span',
            {
              class: 'chip merge',
              'data-testid': 'event-merge',
              title: 'A field update: the sync server merges these paths into its own value',
            },
            'fields',
          )
        : null,
      h(
        'button',
        {
          type: 'button',
          class: 'entity',
          title: 'Show the history of this entity',
          onclick: () => {
            inspected = { table: event.table, key }
            draw()
          },
        },
        `${event.table} ${key}`,
      ),
      h('span', { class: 'diff' }, describe(event)),
    )
  }

  function drawHistory() {
    history.hidden = !inspected
    if (!inspected) return
    const { table, key } = inspected
    // The newest entries of a long history (the timeline may keep many more than it can draw).
    const entries = events.filter((event) => sameEntity(event, table, key)).slice(-DRAW)
    history.replaceChildren(
      h(
        'h3',
        {},
        `History of ${table} ${key}`,
        ' ',
        h(
          'button',
          { type: 'button', 'data-testid': 'history-close', onclick: () => ((inspected = undefined), draw()) },
          'Close',
        ),
      ),
      h(
        'ol',
        { class: 'history' },
        ...entries.map((event) =>
          h(
            'li',
            { 'data-testid': 'history-entry', 'data-type': event.type },
            h('span', { class: `type ${event.type}` }, event.type),
            h('span', { class: `chip ${event.source}` }, event.source),
            event.rev !== undefined ? ` rev ${event.rev} ` : ' ',
            h('span', {}, time(event.at)),
            h('div', { class: 'diff' }, describe(event)),
          ),
        ),
      ),
    )
    if (!entries.length) return void history.append(h('p', { class: 'empty' }, 'No event of this entity is kept.'))
    // Which paths came from whom: the last kept event that wrote each path (a merged update
    // holds paths of several writers).
    const writers = new Map<string, ChangeEvent>()
    for (const event of entries) {
      if (event.type === 'update') for (const path of Object.keys(event.changes)) writers.set(path, event)
      else {
        for (const path of [...writers.keys()]) writers.delete(path)
        if (event.value && typeof event.value === 'object')
          for (const path of Object.keys(event.value)) writers.set(path, event)
      }
    }
    if (writers.size === 0) return
    history.append(
      h('h4', {}, 'Fields, by who wrote them last'),
      h(
        'ul',
        { class: 'writers', 'data-testid': 'history-writers' },
        ...[...writers].map(([path, event]) =>
          h(
            'li',
            { 'data-testid': 'history-writer', 'data-path': path },
            `${path} ← `,
            h('span', { class: `chip ${event.source}` }, event.source),
            ` ${event.origin}${event.type === 'update' && event.ops?.[path] ? ` (${showOp(event.ops[path])})` : ''} `,
            h('span', {}, time(event.at)),
          ),
        ),
      ),
    )
  }

  // --- sync ----------------------------------------------------------------------------
  const sync = feed.sync
  if (!sync) syncSection.append(h('h3', {}, 'Sync'), h('p', { class: 'empty' }, 'This feed does not sync.'))
  else {
    const fields = h('dl', { class: 'status' })
    const aside = h('ul', { 'data-testid': 'devtools-set-aside' })
    const rejections = h('ul', { 'data-testid': 'devtools-rejections' })
    // What an action answered when it failed (e.g. retry() without httpSync's setAside part).
    const failed = h('p', { class: 'empty', 'data-testid': 'devtools-action-error' })
    const act = (action: () => Promise<void>) => () =>
      void action().then(
        () => (failed.textContent = ''),
        (error: unknown) => (failed.textContent = String((error as Error)?.message ?? error)),
      )
    syncSection.append(
      h('h3', {}, 'Sync'),
      fields,
      h('h4', {}, 'Set aside'),
      aside,
      failed,
      h('h4', {}, 'Rejections'),
      rejections,
    )
    const drawStatus = () => {
      const status = sync.status
      const rows: Array<[string, string]> = [
        ['state', status.state + (status.paused ? ' (paused)' : '')],
        ['leader', status.leader ? 'this context' : 'another context'],
        ['outbox', String(status.outbox)],
        ['server rev', String(status.serverRev)],
        ['answered local rev', String(status.lastSyncedRev)],
      ]
      if (status.lastContactAt) rows.push(['last contact', time(status.lastContactAt)])
      if (status.lastError) rows.push(['last error', `${status.lastError.reason}: ${status.lastError.message}`])
      fields.replaceChildren(
        ...rows.flatMap(([name, value]) => [
          h('dt', {}, name),
          h('dd', { 'data-testid': `devtools-sync-${name.replace(/ /g, '-')}` }, value),
        ]),
      )
      void sync.setAside().then(
        (items: SetAsideItem[]) =>
          aside.replaceChildren(
            ...(items.length
              ? items.map((item) =>
                  h(
                    'li',
                    {},
                    `${item.kind} rev ${item.rev}: ${item.reason} `,
                    h('button', { type: 'button', onclick: act(() => sync.retry(item)) }, 'Retry'),
                    h('button', { type: 'button', onclick: act(() => sync.drop(item)) }, 'Drop'),
                  ),
                )
              : [h('li', { class: 'empty' }, 'Nothing set aside.')]),
          ),
        () => {},
      )
    }
    const store = rejectionsStore(sync)
    const drawRejections = () => {
      const items = store.getSnapshot()
      rejections.replaceChildren(
        ...(items.length
          ? items.map((rejection) =>
              h(
                'li',
                {},
                `rev ${rejection.rev} (${rejection.code}): ${rejection.reason} `,
                h('button', { type: 'button', onclick: act(() => sync.dismiss(rejection.rev)) }, 'Dismiss'),
                // What was refused: each change as it was sent.
                h(
                  'ul',
                  { class: 'refused' },
                  ...rejection.changes.map((change) =>
                    h(
                      'li',
                      {},
                      `${change.type} ${change.table} ${show(change.key)}`,
                      change.value === undefined ? '' : `: ${show(change.value)}`,
                    ),
                  ),
                ),
              ),
            )
          : [h('li', { class: 'empty' }, 'No rejection.')]),
      )
    }
    cleanups.push(sync.subscribe(drawStatus), store.subscribe(drawRejections))
    drawStatus()
    drawRejections()
  }

  draw()
  return () => cleanups.splice(0).forEach((cleanup) => cleanup())
}
