import { h } from './dom'

/** Placeholder for server sync (push, pull and streaming against a mock server). */
export function createSyncPanel() {
  return h(
    'section',
    { class: 'panel sync', 'aria-labelledby': 'sync-title' },
    h('h2', { id: 'sync-title' }, 'Server sync'),
    h(
      'p',
      {},
      'Not connected. Server sync (a durable outbox pushed over HTTP, remote changes pulled or streamed back, ' +
        'with a mock server) is on the roadmap; remote changes will appear in the timeline as ',
      h('span', { class: 'chip remote' }, 'remote'),
      '.',
    ),
  )
}
