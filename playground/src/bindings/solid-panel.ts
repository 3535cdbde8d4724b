import h from 'solid-js/h'
import { For, type JSX } from 'solid-js'
import { render } from 'solid-js/web'
import type { Feed, TableMap } from '@changecast/core'
import { ChangecastProvider, createChanges, createEntity, createTable } from '@changecast/solid'
import type { BoardDb, Status } from '../db'
import { shown } from './shown'

type BoardFeed = Feed<TableMap<BoardDb>>
const STATUSES: Status[] = ['todo', 'doing', 'done']

function Board(props: { feed: BoardFeed }) {
  const { feed } = props
  const tasks = createTable('tasks', {}, { feed })
  const watched = createEntity('tasks', 1, { feed })
  const recent = createChanges('tasks', { feed, limit: 5 })
  const count = (status: Status) => tasks().filter((task) => task.status === status).length
  return h(
    'div',
    { 'data-testid': 'solid-panel' },
    h(
      'p',
      {},
      'Task 1: ',
      h('strong', { 'data-testid': 'solid-task-1' }, () => shown(watched()?.title)),
      () => (watched() ? ` · ${watched()!.status}` : ''),
    ),
    h(
      'dl',
      { class: 'status-counts' },
      STATUSES.flatMap((status) => [
        h('dt', {}, status),
        h('dd', { 'data-testid': `solid-count-${status}` }, () => String(count(status))),
      ]),
    ),
    h('h4', {}, 'Recent task events'),
    h(
      'ol',
      { class: 'activity', 'data-testid': 'solid-activity' },
      h(For, {
        get each() {
          return recent()
        },
        children: (event: ReturnType<typeof recent>[number]) =>
          h(
            'li',
            {},
            h('span', { class: `type ${event.type}` }, event.type),
            ` task ${JSON.stringify(event.key)} `,
            h('span', { class: `chip ${event.source}` }, event.source),
          ),
      }),
    ),
  )
}

/** Mounts the Solid panel: built only with @changecast/solid primitives (no JSX build step). */
export function mountSolidPanel(element: HTMLElement, feed: BoardFeed): void {
  // `h` returns the lazy element function `render` expects.
  const app = h(ChangecastProvider, { feed, children: () => h(Board, { feed }) }) as unknown as () => JSX.Element
  render(app, element)
}
