import type { ChangeEvent, ChangeSource } from '@changecast/core'
import { h, time } from './dom'

/** `remote`: another client, heard through the server (its events are `source: 'remote'`). */
type Peer = { origin: string; kind: 'tab' | 'worker' | 'remote'; heard: number; events: number }
const KINDS: Record<Peer['kind'], string> = { tab: 'tab', worker: 'worker', remote: 'client via the server' }
type Presence = { origin: string; kind: 'hello' | 'here' | 'bye' }

/**
 * This tab's identity, the other tabs and workers it has heard from, and how many events
 * it received from each source. Tabs announce themselves on a small presence channel;
 * anything that sends events is listed too.
 */
export function createTabsPanel(origin: string) {
  const peers = new Map<string, Peer>()
  const counts: Record<ChangeSource, number> = { local: 0, tab: 0, remote: 0 }
  const counters = Object.fromEntries(
    (['local', 'tab', 'remote'] as const).map((source) => [
      source,
      h('output', { 'data-testid': `count-${source}` }, '0'),
    ]),
  ) as Record<ChangeSource, HTMLOutputElement>
  const list = h('ul', { class: 'peers', 'data-testid': 'peers' })

  const presence = new BroadcastChannel('changecast-playground-presence')
  presence.onmessage = (event: MessageEvent<Presence>) => {
    const message = event.data
    if (!message || typeof message.origin !== 'string') return
    if (message.kind === 'bye') peers.delete(message.origin)
    else {
      touch(message.origin, 'tab')
      if (message.kind === 'hello') presence.postMessage({ origin, kind: 'here' } satisfies Presence)
    }
    draw()
  }
  presence.postMessage({ origin, kind: 'hello' } satisfies Presence)
  addEventListener('pagehide', () => presence.postMessage({ origin, kind: 'bye' } satisfies Presence))

  function touch(from: string, kind: Peer['kind']) {
    const peer = peers.get(from) ?? { origin: from, kind, heard: Date.now(), events: 0 }
    peer.heard = Date.now()
    peers.set(from, peer)
    return peer
  }

  function draw() {
    for (const source of ['local', 'tab', 'remote'] as const) counters[source].textContent = String(counts[source])
    list.replaceChildren(
      ...[...peers.values()].map((peer) =>
        h(
          'li',
          { 'data-testid': 'peer', 'data-origin': peer.origin },
          h('code', {}, peer.origin.slice(0, 8)),
          ` ${KINDS[peer.kind]} · ${peer.events} events · last heard ${time(peer.heard)}`,
        ),
      ),
    )
    if (peers.size === 0)
      list.append(h('li', { class: 'empty' }, 'No other tab yet. Open one to see events cross over.'))
  }

  const element = h(
    'section',
    { class: 'panel tabs', 'aria-labelledby': 'tabs-title' },
    h('h2', { id: 'tabs-title' }, 'Tabs'),
    h('p', {}, 'This tab is ', h('code', { 'data-testid': 'origin', title: origin }, origin.slice(0, 8)), '.'),
    h(
      'button',
      { type: 'button', 'data-testid': 'open-tab', onclick: () => window.open(location.href, '_blank') },
      'Open another tab',
    ),
    h(
      'dl',
      { class: 'counters' },
      ...(['local', 'tab', 'remote'] as const).flatMap((source) => [
        h('dt', { class: `chip ${source}` }, source),
        h('dd', {}, counters[source]),
      ]),
    ),
    h('h3', {}, 'Heard from'),
    list,
  )
  draw()

  return {
    element,
    /** Registers a worker this tab started, so it is listed before it writes. */
    addWorker(workerOrigin: string) {
      touch(workerOrigin, 'worker')
      draw()
    },
    removeWorker(workerOrigin: string) {
      peers.delete(workerOrigin)
      draw()
    },
    count(events: ChangeEvent[]) {
      for (const event of events) {
        counts[event.source]++
        if (event.source === 'local') continue
        const kind = event.source === 'remote' ? 'remote' : (peers.get(event.origin)?.kind ?? 'tab')
        touch(event.origin, kind).events++
      }
      draw()
    },
  }
}
