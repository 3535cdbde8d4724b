import Dexie, { type EntityTable } from 'dexie'

export interface Task {
  id: number
  title: string
  done: boolean
}

export type PlaygroundDB = Dexie & { tasks: EntityTable<Task, 'id'> }

/** The playground's database: a small task list. */
export function createDb(name = 'changecast-playground'): PlaygroundDB {
  const db = new Dexie(name) as PlaygroundDB
  db.version(1).stores({ tasks: '++id, done' })
  return db
}
