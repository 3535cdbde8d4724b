import { readdir, readFile } from 'node:fs/promises'
import { names } from '../names.js'
import type { Database } from './port.js'

const DIRECTORY = new URL('../../migrations/', import.meta.url)

/**
 * Brings the schema up to date: applies, in order, each `migrations/NNN-*.sql` not applied
 * yet, each in a transaction with its version record. Safe to run from several instances at
 * once (an advisory lock serialises them) and again at every start.
 */
export async function migrate(db: Database, schema = 'public'): Promise<number[]> {
  const t = names(schema)
  const files = (await readdir(DIRECTORY)).filter((name) => /^\d{3}-.*\.sql$/.test(name)).sort()
  const applied: number[] = []
  for (const name of files) {
    const version = Number(name.slice(0, 3))
    const sql = await readFile(new URL(name, DIRECTORY), 'utf8')
    const done = await db.transaction(async (tx) => {
      // Under the lock, so instances starting together do not race to create the table.
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`changecast-migrations:${schema}`])
      await tx.query(`create schema if not exists "${schema}"`)
      // The migration files name tables unqualified: they land in this schema.
      await tx.query(`set local search_path to "${schema}"`)
      await tx.query(
        `create table if not exists ${t.migrations} (version int primary key, name text not null, applied_at timestamptz not null default now())`,
      )
      const found = await tx.query(`select 1 from ${t.migrations} where version = $1`, [version])
      if (found.length > 0) return false
      for (const statement of statements(sql)) await tx.query(statement)
      await tx.query(`insert into ${t.migrations} (version, name) values ($1, $2)`, [version, name])
      return true
    })
    if (done) applied.push(version)
  }
  return applied
}

/** The statements of a migration file (split on `;` at line ends; comments dropped). */
function statements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((statement) => statement.trim())
    .filter(Boolean)
}
