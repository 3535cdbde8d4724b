import type { ChangeEvent, ChangeSource, ChangeType } from '@changecast/core'
import { h, show, time } from './dom'

/** Events kept in memory; older ones drop off (the total keeps counting). */
const KEEP = 10_000
/** Rows drawn at once: the newest matching events. */
const DRAW = 200

const TYPES: ChangeType[] = ['create', 'update', 'delete']
const SOURCES: ChangeSource[] = ['local', 'tab', 'remote']

/** The live event timeline: filters, pause and clear, grouped by transaction. */
export function createTimeline(tables: string[]) {
  let events: ChangeEvent[] = []
  let held: ChangeEvent[] = []
  let paused = false
  let scheduled = false
  const filter = { table: '', types: new Set(TYPES), sources: new Set(SOURCES) }

  const list = h('ol', { class: 'timeline', 'data-testid': 'timeline', 'aria-label': 'Change events, newest first' })
  const shown = h('span', { 'data-testid': 'timeline-shown' }, '0')
  const total = h('span', { 'data-testid': 'timeline-total' }, '0')
  const pending = h('span', { class: 'pending', 'data-testid': 'timeline-held', hidden: true })

  const tableSelect = h(
    'select',
    { id: 'filter-table', onchange: () => ((filter.table = tableSelect.value), schedule()) },
    h('option', { value: '' }, 'all tables'),
    ...tables.map((table) => h('option', { value: table }, table)),
  )
  const toggles = <T extends string>(name: string, values: T[], set: Set<T>) =>
    h(
      'fieldset',
      { class: 'toggles' },
      h('legend', {}, name),
      ...values.map((value) =>
        h(
          'label',
          { class: `chip ${value}` },
          h('input', {
            type: 'checkbox',
            checked: true,
            'data-testid': `filter-${value}`,
            onchange: (event: Event) => {
              if ((event.target as HTMLInputElement).checked) set.add(value)
              else set.delete(value)
              schedule()
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
          append(held)
          held = []
        }
        schedule()
      },
    },
    'Pause',
  )
  const clearButton = h(
    'button',
    {
      type: 'button',
      'data-testid': 'timeline-clear',
      onclick: () => {
        events = []
        held = []
        schedule()
      },
    },
    'Clear',
  )

  const element = h(
    'section',
    { class: 'panel timeline-panel', 'aria-labelledby': 'timeline-title' },
    h('h2', { id: 'timeline-title' }, 'Live timeline'),
    h(
      'div',
      { class: 'controls' },
      h('label', { for: 'filter-table' }, 'Table'),
      tableSelect,
      toggles('Type', TYPES, filter.types),
      toggles('Source', SOURCES, filter.sources),
      pauseButton,
      clearButton,
    ),
    h('p', { class: 'summary', 'aria-live': 'polite' }, 'Showing ', shown, ' of ', total, ' events ', pending),
    list,
  )

  function append(batch: ChangeEvent[]) {
    events.push(...batch)
    if (events.length > KEEP) events = events.slice(events.length - KEEP)
  }

  function schedule() {
    if (scheduled) return
    scheduled = true
    requestAnimationFrame(draw)
  }

  function matches(event: ChangeEvent) {
    return (
      (!filter.table || event.table === filter.table) &&
      filter.types.has(event.type) &&
      filter.sources.has(event.source)
    )
  }

  function draw() {
    scheduled = false
    const matching: ChangeEvent[] = []
    let count = 0
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i]!
      if (!matches(event)) continue
      count++
      if (matching.length < DRAW) matching.push(event)
    }
    shown.textContent = String(Math.min(count, DRAW))
    total.textContent = String(count)
    pending.hidden = held.length === 0
    pending.textContent = held.length ? `(${held.length} held while paused)` : ''
    const groups: HTMLElement[] = []
    for (let i = 0; i < matching.length;) {
      const tx = matching[i]!.tx
      const group: ChangeEvent[] = []
      while (i < matching.length && matching[i]!.tx === tx) group.push(matching[i++]!)
      groups.push(renderGroup(group))
    }
    list.replaceChildren(...groups)
  }

  return {
    element,
    add(batch: ChangeEvent[]) {
      if (paused) held.push(...batch)
      else append(batch)
      schedule()
    },
  }
}

function renderGroup(group: ChangeEvent[]): HTMLElement {
  const first = group[0]!
  return h(
    'li',
    { class: `group ${first.source}` },
    h(
      'div',
      { class: 'group-head' },
      h('span', { class: `chip ${first.source}`, 'data-testid': 'group-source' }, first.source),
      h('span', {}, `tx ${first.tx.slice(0, 8)}…${first.tx.slice(first.tx.lastIndexOf('.'))}`),
      first.rev !== undefined ? h('span', { class: 'rev' }, `rev ${first.rev}`) : null,
      h('span', { class: 'at' }, time(first.at)),
      group.length > 1 ? h('span', {}, `${group.length} events`) : null,
    ),
    h('ul', { class: 'events' }, ...[...group].reverse().map(renderEvent)),
  )
}

function renderEvent(event: ChangeEvent): HTMLElement {
  return h(
    'li',
    {
      class: 'event',
      'data-testid': 'event',
      'data-type': event.type,
      'data-source': event.source,
      'data-table': event.table,
      'data-key': show(event.key),
    },
    h('span', { class: `type ${event.type}` }, event.type),
    h('span', { class: 'where' }, `${event.table} ${show(event.key)}`),
    h('span', { class: 'diff' }, describe(event)),
  )
}

function describe(event: ChangeEvent): string {
  if (event.type === 'update' && event.changes) {
    return Object.entries(event.changes)
      .map(([path, next]) => `${path}: ${show(lookup(event.previous, path))} → ${show(next)}`)
      .join(', ')
  }
  const value = event.type === 'delete' ? event.previous : event.value
  if (!value || typeof value !== 'object') return show(value)
  return Object.entries(value)
    .filter(([name]) => name !== 'id' && name !== 'updatedAt')
    .map(([name, v]) => `${name}: ${show(v)}`)
    .join(', ')
}

function lookup(value: unknown, path: string): unknown {
  let current = value
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string, unknown>)[part]
  }
  return current
}
