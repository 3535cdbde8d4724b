import { createElement as h, memo, StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import type { ChangeEvent, Feed, TableMap } from '@changecast/core'
import { ChangecastProvider, useChanges, useEntity, useTable } from '@changecast/react'
import type { BoardDb, Status, Task } from '../db'
import { shown } from './shown'

type BoardFeed = Feed<TableMap<BoardDb>>
const STATUSES: Status[] = ['todo', 'doing', 'done']

const Activity = memo(function Activity({ event }: { event: ChangeEvent }) {
  return h(
    'li',
    {},
    h('span', { className: `type ${event.type}` }, event.type),
    ` task ${JSON.stringify(event.key)} `,
    h('span', { className: `chip ${event.source}` }, event.source),
  )
})

function Board({ feed }: { feed: BoardFeed }) {
  const tasks = useTable('tasks', {}, { feed })
  const watched = useEntity('tasks', 1, { feed })
  const recent = useChanges('tasks', { feed, limit: 5 })
  const count = (status: Status) => tasks.filter((task: Task) => task.status === status).length
  return h(
    'div',
    { 'data-testid': 'react-panel' },
    h(
      'p',
      {},
      'Task 1: ',
      h('strong', { 'data-testid': 'react-task-1' }, shown(watched?.title)),
      watched ? ` · ${watched.status}` : '',
    ),
    h(
      'dl',
      { className: 'status-counts' },
      ...STATUSES.flatMap((status) => [
        h('dt', { key: `t-${status}` }, status),
        h('dd', { key: `d-${status}`, 'data-testid': `react-count-${status}` }, count(status)),
      ]),
    ),
    h('h4', {}, 'Recent task events'),
    h(
      'ol',
      { className: 'activity', 'data-testid': 'react-activity' },
      ...recent.map((event) => h(Activity, { key: `${event.tx}:${JSON.stringify(event.key)}`, event })),
    ),
  )
}

/** Mounts the React panel: built only with @changecast/react hooks. */
export function mountReactPanel(element: HTMLElement, feed: BoardFeed): void {
  createRoot(element).render(h(StrictMode, null, h(ChangecastProvider, { feed }, h(Board, { feed }))))
}
