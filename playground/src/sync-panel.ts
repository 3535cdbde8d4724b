import { rejectionsStore, type SetAsideItem, type SyncController, type SyncRejection } from '@changecast/core'
import { liveQuery } from 'dexie'
import type { BoardDb } from './db'
import { h, show, time } from './dom'

/** The sync room of this page: `?room=…`, so demos and tests get their own server. */
export function syncRoom(): string {
  return new URLSearchParams(location.search).get('room') ?? 'default'
}

/** Server sync status and the playground server's controls (network, latency, failures, another user). */
export function createSyncPanel(sync: SyncController, room: string, db: BoardDb, user?: string) {
  const control = (body: object) =>
    fetch(`/api/sync/${room}/control`, { method: 'POST', body: JSON.stringify(body) }).then((r) =>
      r.json(),
    ) as Promise<{
      batches: number
    }>

  const fields = {
    state: h('dd', { 'data-testid': 'sync-state' }),
    leader: h('dd', { 'data-testid': 'sync-leader' }),
    outbox: h('dd', { 'data-testid': 'sync-outbox' }),
    server: h('dd', { 'data-testid': 'sync-server-rev' }),
    synced: h('dd', { 'data-testid': 'sync-synced-rev' }),
    error: h('dd', { 'data-testid': 'sync-error' }),
  }
  // While a snapshot of the server's state loads (a new client, or after compaction).
  const progress = h('progress', { 'data-testid': 'sync-progress', hidden: true, max: 1, value: 0 })
  const log = h('ul', { class: 'sync-log', 'data-testid': 'sync-log', 'aria-live': 'polite' })
  const note = (text: string) => {
    log.prepend(h('li', {}, `${time(Date.now())} ${text}`))
    while (log.children.length > 5) log.lastChild!.remove()
  }

  const draw = () => {
    const status = sync.status
    fields.state.textContent = status.paused ? `${status.state} (paused)` : status.state
    fields.state.className = `sync-state ${status.state}`
    fields.leader.textContent = status.leader ? 'this tab' : 'another tab'
    fields.outbox.textContent = String(status.outbox)
    fields.server.textContent = String(status.serverRev)
    fields.synced.textContent = String(status.lastSyncedRev)
    fields.error.textContent = status.lastError?.message ?? '—'
    progress.hidden = status.phase !== 'bootstrap'
    progress.max = Math.max(status.total ?? 0, 1)
    progress.value = status.loaded ?? 0
    progress.textContent = `${status.loaded ?? 0} of ${status.total ?? 0}`
    if (status.setAside !== shownAside) void drawAside()
  }

  // The conflict inbox: rejections until dismissed, and what was set aside, with their actions.
  const inbox = h('ul', {
    class: 'sync-inbox',
    'data-testid': 'sync-inbox',
    'aria-label': 'Rejections and set-aside commits',
  })
  const rejections = rejectionsStore(sync)
  let shownAside = -1
  let aside: SetAsideItem[] = []
  const button = (label: string, testid: string, run: () => Promise<void>) =>
    h(
      'button',
      { type: 'button', 'data-testid': testid, onclick: () => void run().catch((error: Error) => note(error.message)) },
      label,
    )
  const drawInbox = () =>
    inbox.replaceChildren(
      ...rejections.getSnapshot().map((rejection) =>
        h(
          'li',
          { 'data-testid': 'rejection' },
          `Rejected rev ${rejection.rev}: ${rejection.reason} → server has ${rejection.current.map((c) => show(c.value)).join(', ')} `,
          button('Dismiss', 'dismiss', () => sync.dismiss(rejection.rev)),
        ),
      ),
      ...aside.map((item) =>
        h(
          'li',
          { 'data-testid': 'set-aside' },
          `Set aside (${item.kind} ${item.rev}): ${item.reason} `,
          button('Retry', 'retry', () => sync.retry(item)),
          button('Drop', 'drop', () => sync.drop(item)),
        ),
      ),
    )
  const drawAside = async () => {
    shownAside = sync.status.setAside
    aside = await sync.setAside()
    drawInbox()
  }
  rejections.subscribe(drawInbox)
  sync.subscribe(draw)
  sync.onError((error) => note(`error: ${error.message}`))
  sync.onRejected((rejection: SyncRejection) => note(`rejected rev ${rejection.rev}: ${rejection.reason}`))
  draw()

  let offline = false
  const network = h(
    'button',
    {
      type: 'button',
      'aria-pressed': 'false',
      'data-testid': 'server-offline',
      onclick: () => {
        offline = !offline
        network.setAttribute('aria-pressed', String(offline))
        network.textContent = offline ? 'Server unreachable: bring it back' : 'Cut the server off'
        void control({ offline })
      },
    },
    'Cut the server off',
  )
  const select = (label: string, id: string, options: Array<[string, number]>, apply: (value: number) => void) =>
    h(
      'label',
      { for: id },
      `${label} `,
      h(
        'select',
        { id, onchange: (event: Event) => apply(Number((event.target as HTMLSelectElement).value)) },
        ...options.map(([text, value]) => h('option', { value }, text)),
      ),
    )

  return h(
    'section',
    { class: 'panel sync', 'aria-labelledby': 'sync-title' },
    h('h2', { id: 'sync-title' }, 'Server sync'),
    h(
      'p',
      {},
      'Pushes every commit to the Changecast server (',
      h('code', {}, '@changecast/server'),
      ' on PGlite, room ',
      h('code', {}, room),
      ') and streams back what others write, as ',
      h('span', { class: 'chip remote' }, 'remote'),
      ' events. One tab at a time talks to the server.',
    ),
    h(
      'dl',
      { class: 'sync-status' },
      h('dt', {}, 'State'),
      fields.state,
      h('dt', {}, 'Leader'),
      fields.leader,
      h('dt', {}, 'Outbox'),
      fields.outbox,
      h('dt', {}, 'Up to server rev'),
      fields.server,
      h('dt', {}, 'Answered local rev'),
      fields.synced,
      h('dt', {}, 'Last error'),
      fields.error,
    ),
    h(
      'div',
      { class: 'actions' },
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'sync-now',
          onclick: () =>
            void sync.flush().then(
              () => note('synced'),
              (error: Error) => note(`flush failed: ${error.message}`),
            ),
        },
        'Sync now',
      ),
      h(
        'button',
        {
          type: 'button',
          'data-testid': 'another-user',
          onclick: () => void control({ edit: { key: 7, title: `Edited by another user at ${time(Date.now())}` } }),
        },
        'Another user edits task 7',
      ),
      network,
    ),
    h(
      'div',
      { class: 'actions' },
      select(
        'Latency',
        'sync-latency',
        [
          ['0 ms', 0],
          ['200 ms', 200],
          ['1 s', 1000],
        ],
        (latency) => void control({ latency }),
      ),
      select(
        'Failures',
        'sync-failures',
        [
          ['none', 0],
          ['20 %', 0.2],
          ['50 %', 0.5],
        ],
        (failureRate) => void control({ failureRate }),
      ),
    ),
    progress,
    user ? createProjects(db, user) : '',
    inbox,
    log,
  )
}

/**
 * A teams room (`?room=teams…&user=ann`): who this page is, the projects its tasks come
 * from (the sync scopes the server gives this user), and a way to add a task to one.
 */
function createProjects(db: BoardDb, user: string) {
  const list = h('ul', { 'data-testid': 'projects' })
  const draw = async () => {
    const counts = new Map<string, number>()
    await db.tasks.each((task) => counts.set(task.project ?? 'shared', (counts.get(task.project ?? 'shared') ?? 0) + 1))
    list.replaceChildren(
      ...[...counts]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([project, count]) => h('li', { 'data-testid': `project-${project}` }, `${project}: ${count} tasks`)),
    )
  }
  const picker = h(
    'select',
    { id: 'new-task-project', 'data-testid': 'new-task-project' },
    ...['project:apollo', 'project:zephyr', 'project:mercury'].map((project) =>
      h('option', { value: project }, project),
    ),
  )
  const add = h(
    'button',
    {
      type: 'button',
      'data-testid': 'add-to-project',
      onclick: () =>
        void db.tasks.add({
          // Ids of their own, so that two users' new tasks never meet.
          id: 1_000_000 + Math.floor(Math.random() * 1e9),
          title: `${user}'s task`,
          status: 'todo',
          project: picker.value,
          updatedAt: Date.now(),
        }),
    },
    'Add a task there',
  )
  liveQuery(() => db.tasks.toArray()).subscribe({ next: () => void draw() })
  return h(
    'div',
    { class: 'projects', 'data-user': user },
    h(
      'p',
      {},
      'Signed in as ',
      h('strong', { 'data-testid': 'user' }, user),
      '. Tasks by project, as the server scopes them:',
    ),
    list,
    h('label', { for: 'new-task-project' }, 'Project '),
    picker,
    add,
    h('p', { class: 'hint' }, 'A project you are not in is refused by the server: see the rejection above.'),
  )
}
