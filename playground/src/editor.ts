import type { ChangeEvent } from '@changecast/core'
import { randomTitle, type BoardDb, type Person, type Status, type Task } from './db'
import { h } from './dom'

const STATUSES: Status[] = ['todo', 'doing', 'done']

/**
 * The entity editor. Its lists are loaded from Dexie once and then kept current from
 * change events alone (local, other tabs, the worker): no re-query on change.
 */
export function createEditor(db: BoardDb) {
  const tasks = new Map<number, Task>()
  const people = new Map<number, Person>()
  const rows = new Map<number, HTMLTableRowElement>()
  let scheduled = false

  const status = h('p', { class: 'status', role: 'status', 'data-testid': 'status' })
  const say = (text: string) => (status.textContent = text)
  const body = h('tbody', { 'data-testid': 'tasks' })
  const count = h('span', { 'data-testid': 'task-count' }, '0')

  const titleInput = h('input', { id: 'new-task', name: 'title', required: true, autocomplete: 'off' })
  const form = h(
    'form',
    {
      class: 'add',
      'data-testid': 'task-form',
      onsubmit: (event: Event) => {
        event.preventDefault()
        const title = titleInput.value.trim()
        if (!title) return
        titleInput.value = ''
        void db.tasks.add({ title, status: 'todo', updatedAt: Date.now() })
      },
    },
    h('label', { for: 'new-task' }, 'New task'),
    titleInput,
    h('button', { type: 'submit' }, 'Add'),
  )

  const action = (label: string, testid: string, run: () => Promise<string>) =>
    h(
      'button',
      {
        type: 'button',
        'data-testid': testid,
        onclick: () => {
          run().then(say, (error: unknown) => say(`Failed: ${String(error)}`))
        },
      },
      label,
    )

  const actions = h(
    'div',
    { class: 'actions' },
    action('Add 1,000 tasks', 'bulk-add', async () => {
      const now = Date.now()
      const batch: Array<Omit<Task, 'id'>> = Array.from({ length: 1000 }, () => ({
        title: randomTitle(),
        status: 'todo',
        updatedAt: now,
      }))
      await db.tasks.bulkAdd(batch)
      return 'Added 1,000 tasks in one transaction.'
    }),
    action('Clear tasks', 'clear-tasks', async () => {
      const removed = await db.tasks.count()
      await db.tasks.clear()
      return `Cleared ${removed} tasks: one delete event each.`
    }),
    action('Multi-table transaction', 'multi-table', async () => {
      await db.transaction('rw', db.people, db.tasks, db.comments, async () => {
        const author = await db.people.add({ name: `Guest ${Math.floor(Math.random() * 900 + 100)}` })
        const taskId = await db.tasks.add({
          title: randomTitle(),
          status: 'doing',
          assignee: author,
          updatedAt: Date.now(),
        })
        await db.comments.add({ taskId, author, text: 'Picked this up.', at: Date.now() })
      })
      return 'One transaction, three tables: one batch of three events.'
    }),
    action('Failing transaction', 'failing-tx', async () => {
      try {
        await db.transaction('rw', db.tasks, async () => {
          await db.tasks.add({ title: 'This task never exists', status: 'todo', updatedAt: Date.now() })
          throw new Error('rolled back on purpose')
        })
      } catch {
        return 'Rolled back: the transaction aborted, so no event was emitted anywhere.'
      }
      return 'Unexpected: the transaction committed.'
    }),
  )

  const element = h(
    'section',
    { class: 'panel editor', 'aria-labelledby': 'editor-title' },
    h('h2', { id: 'editor-title' }, 'Tasks ', h('small', {}, '(', count, ')')),
    form,
    actions,
    status,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Title'),
            h('th', { scope: 'col' }, 'Status'),
            h('th', { scope: 'col' }, 'Assignee'),
            h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
          ),
        ),
        body,
      ),
    ),
  )

  function row(task: Task): HTMLTableRowElement {
    const title = h('input', {
      'aria-label': `Title of task ${task.id}`,
      'data-testid': 'task-title',
      value: task.title,
      onchange: () => void db.tasks.update(task.id, { title: title.value, updatedAt: Date.now() }),
    })
    const state = h(
      'select',
      {
        'aria-label': `Status of task ${task.id}`,
        onchange: () => void db.tasks.update(task.id, { status: state.value as Status, updatedAt: Date.now() }),
      },
      ...STATUSES.map((s) => h('option', { value: s }, s)),
    )
    const assignee = h('select', {
      'aria-label': `Assignee of task ${task.id}`,
      onchange: () =>
        void db.tasks.update(task.id, {
          assignee: assignee.value ? Number(assignee.value) : undefined,
          updatedAt: Date.now(),
        }),
    })
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'icon',
        'aria-label': `Delete task ${task.id}`,
        onclick: () => void db.tasks.delete(task.id),
      },
      '✕',
    )
    const tr = h(
      'tr',
      { 'data-testid': 'task-row', 'data-id': task.id },
      h('td', {}, title),
      h('td', {}, state),
      h('td', {}, assignee),
      h('td', {}, remove),
    )
    fill(tr, task)
    return tr
  }

  function fill(tr: HTMLTableRowElement, task: Task) {
    const [title, state, assignee] = tr.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select')
    if (document.activeElement !== title && title!.value !== task.title) title!.value = task.title
    state!.value = task.status
    const options = [
      h('option', { value: '' }, '—'),
      ...[...people.values()].map((p) => h('option', { value: p.id }, p.name)),
    ]
    assignee!.replaceChildren(...options)
    assignee!.value = task.assignee === undefined ? '' : String(task.assignee)
  }

  function schedule() {
    if (scheduled) return
    scheduled = true
    requestAnimationFrame(draw)
  }

  function draw() {
    scheduled = false
    const ids = [...tasks.keys()].sort((a, b) => a - b)
    for (const [id, tr] of rows) {
      if (!tasks.has(id)) {
        tr.remove()
        rows.delete(id)
      }
    }
    let previous: HTMLTableRowElement | undefined
    for (const id of ids) {
      let tr = rows.get(id)
      if (!tr) {
        tr = row(tasks.get(id)!)
        rows.set(id, tr)
      } else if (dirty.has(id)) fill(tr, tasks.get(id)!)
      const expected = previous ? previous.nextSibling : body.firstChild
      if (expected !== tr) body.insertBefore(tr, expected)
      previous = tr
    }
    dirty.clear()
    count.textContent = String(tasks.size)
  }

  const dirty = new Set<number>()

  return {
    element,
    /** Loads both lists from the database (at start, and after a resync). */
    async load() {
      const [allPeople, allTasks] = await Promise.all([db.people.toArray(), db.tasks.toArray()])
      people.clear()
      allPeople.forEach((p) => people.set(p.id, p))
      tasks.clear()
      allTasks.forEach((t) => tasks.set(t.id, t))
      rows.forEach((tr) => tr.remove())
      rows.clear()
      schedule()
    },
    /** Applies events: whole values, so applying one twice changes nothing. */
    apply(events: ChangeEvent[]) {
      for (const event of events) {
        const key = event.key as number
        if (event.table === 'tasks') {
          if (event.type === 'delete') tasks.delete(key)
          else tasks.set(key, event.value as Task)
          dirty.add(key)
        } else if (event.table === 'people') {
          if (event.type === 'delete') people.delete(key)
          else people.set(key, event.value as Person)
          tasks.forEach((_, id) => dirty.add(id))
        }
      }
      schedule()
    },
  }
}
