import { computed, createApp, defineComponent, h } from 'vue'
import type { Feed, TableMap } from '@changecast/core'
import { changecastPlugin, useChanges, useEntity, useTable } from '@changecast/vue'
import type { BoardDb, Status } from '../db'
import { shown } from './shown'

type BoardFeed = Feed<TableMap<BoardDb>>
const STATUSES: Status[] = ['todo', 'doing', 'done']

/** Mounts the Vue panel: built only with @changecast/vue composables. */
export function mountVuePanel(element: HTMLElement, feed: BoardFeed): void {
  const Board = defineComponent({
    setup() {
      const tasks = useTable('tasks', {}, { feed })
      const watched = useEntity('tasks', 1, { feed })
      const recent = useChanges('tasks', { feed, limit: 5 })
      const counts = computed(() =>
        Object.fromEntries(
          STATUSES.map((status) => [status, tasks.value.filter((task) => task.status === status).length]),
        ),
      )
      return () =>
        h('div', { 'data-testid': 'vue-panel' }, [
          h('p', [
            'Task 1: ',
            h('strong', { 'data-testid': 'vue-task-1' }, shown(watched.value?.title)),
            watched.value ? ` · ${watched.value.status}` : '',
          ]),
          h(
            'dl',
            { class: 'status-counts' },
            STATUSES.flatMap((status) => [
              h('dt', status),
              h('dd', { 'data-testid': `vue-count-${status}` }, counts.value[status]),
            ]),
          ),
          h('h4', 'Recent task events'),
          h(
            'ol',
            { class: 'activity', 'data-testid': 'vue-activity' },
            recent.value.map((event) =>
              h('li', { key: `${event.tx}:${JSON.stringify(event.key)}` }, [
                h('span', { class: `type ${event.type}` }, event.type),
                ` task ${JSON.stringify(event.key)} `,
                h('span', { class: `chip ${event.source}` }, event.source),
              ]),
            ),
          ),
        ])
    },
  })
  createApp(Board).use(changecastPlugin, feed).mount(element)
}
