import Dexie, { type EntityTable } from 'dexie'

export type Status = 'todo' | 'doing' | 'done'

export interface Task {
  id: number
  title: string
  status: Status
  assignee?: number
  updatedAt: number
  /** In a teams room: the project it belongs to (its sync scope). */
  project?: string
}

export interface Person {
  id: number
  name: string
}

export interface Comment {
  id: number
  taskId: number
  author: number
  text: string
  at: number
}

/** The playground's database: a small team task board. */
export type BoardDb = Dexie & {
  tasks: EntityTable<Task, 'id'>
  people: EntityTable<Person, 'id'>
  comments: EntityTable<Comment, 'id'>
}

export const DB_NAME = 'changecast-playground'

export function createDb(name = DB_NAME): BoardDb {
  const db = new Dexie(name) as BoardDb
  db.version(1).stores({
    tasks: '++id, status, assignee',
    people: '++id',
    comments: '++id, taskId',
  })
  db.on('populate', (tx) => {
    void tx.table('people').bulkAdd([{ name: 'Ada' }, { name: 'Grace' }, { name: 'Linus' }])
    void tx.table('tasks').bulkAdd([
      { title: 'Sketch the timeline', status: 'done', assignee: 1, updatedAt: Date.now() },
      { title: 'Wire the editor', status: 'doing', assignee: 2, updatedAt: Date.now() },
      { title: 'Open a second tab', status: 'todo', updatedAt: Date.now() },
    ])
  })
  return db
}

const words = ['Review', 'Fix', 'Write', 'Ship', 'Plan', 'Test', 'Refactor', 'Measure', 'Document', 'Design']
const things = ['login', 'timeline', 'sync', 'cache', 'docs', 'benchmarks', 'release', 'search', 'export', 'settings']

/** A plausible task title. */
export function randomTitle(): string {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)]!
  return `${pick(words)} ${pick(things)}`
}
