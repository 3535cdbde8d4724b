import { changecast, type ChangeEvent } from '@changecast/core'
import { httpSync, setAsideActions, stream } from '@changecast/core/sync'
import { mountDevtools } from '@changecast/devtools'
import { createBindingsPanel } from './bindings/bindings-panel'
import { createDb, DB_NAME } from './db'
import { h } from './dom'
import { createEditor } from './editor'
import { createSyncPanel, syncRoom } from './sync-panel'
import { createTabsPanel } from './tabs'
import { createWorkerPanel } from './worker-panel'

const room = syncRoom()
// `?user=ann` (in a `teams…` room): a user of their own, with a database of their own.
const user = new URLSearchParams(location.search).get('user') ?? undefined
const db = createDb(user ? `${DB_NAME}-${user}` : DB_NAME)
const feed = changecast(db, {
  sync: httpSync({
    url: `${location.origin}/api/sync/${room}`,
    // Live updates, and the Retry and Drop buttons of the sync panel.
    pull: stream,
    setAside: setAsideActions,
    headers: user ? { 'x-user': user } : undefined,
  }),
})

// The live timeline is @changecast/devtools, mounted inline: what any app gets in development.
const devtools = h('div', { class: 'devtools' })
mountDevtools(feed, { target: devtools })
const editor = createEditor(db)
const tabs = createTabsPanel(feed.origin)
const worker = createWorkerPanel(
  (origin) => tabs.addWorker(origin),
  (origin) => tabs.removeWorker(origin),
)

// Until the editor has loaded its lists, hold events back so none is applied before the load.
let loading: ChangeEvent[] | undefined = []
feed.onBatch((batch) => {
  tabs.count(batch.events)
  if (loading) loading.push(...batch.events)
  else editor.apply(batch.events)
})
feed.onResync(() => void load())

async function load() {
  loading ??= []
  await editor.load()
  const held = loading
  loading = undefined
  editor.apply(held)
}

document
  .querySelector('#app')!
  .replaceChildren(
    h(
      'header',
      {},
      h('h1', {}, 'Changecast playground'),
      h('p', {}, 'Every committed Dexie write becomes an event: here, in your other tabs, in a worker.'),
    ),
    h(
      'main',
      {},
      h(
        'div',
        { class: 'column' },
        editor.element,
        tabs.element,
        worker.element,
        createSyncPanel(feed.sync!, room, db, user),
      ),
      h(
        'div',
        { class: 'column' },
        createBindingsPanel(feed),
        h(
          'section',
          { class: 'panel timeline-panel', 'aria-labelledby': 'timeline-title' },
          h('h2', { id: 'timeline-title' }, 'Live timeline · @changecast/devtools'),
          devtools,
        ),
      ),
    ),
  )

void db.open().then(load)
