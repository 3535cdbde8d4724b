// The server keeps the planner's statistics current: PGlite has no autovacuum, and without
// statistics a snapshot page sorts every row of the log instead of walking its index.
import { describe, expect, it } from 'vitest'
import { createSyncHandler, insecureNoAuth, openPGlite } from '@changecast/server'

const row = (id: number) => ({ type: 'create' as const, table: 'rows', key: id, value: { id, title: `row ${id}` } })

describe('planner statistics', () => {
  it('analyzes the log as it grows, so snapshot pages are read through the entity index (PGlite)', async () => {
    const database = await openPGlite()
    const sync = createSyncHandler({ database, authenticate: insecureNoAuth })
    try {
      for (let first = 1; first <= 5000; first += 500) {
        await sync.write(Array.from({ length: 500 }, (_, i) => row(first + i)))
      }
      // Analyzed in the background: the planner learns how many rows there are.
      const known = async () =>
        Number(
          (
            await database.query<{ rows: number }>(
              `select reltuples as rows from pg_class where oid = 'changecast_changes'::regclass`,
            )
          )[0]!.rows,
        )
      await expect.poll(known, { timeout: 10_000 }).toBeGreaterThanOrEqual(1000)
      const plan = (
        await database.query<{ 'QUERY PLAN': string }>(
          `explain select distinct on (tbl, key) scope, tbl, key, type, change from changecast_changes
           where rev <= $1 and (tbl, key) > ($2, $3) order by tbl, key, rev desc, seq desc limit $4`,
          [10, '', '', 2500],
        )
      ).map((line) => line['QUERY PLAN'])
      expect(plan.join('\n')).toContain('Index Scan using changecast_changes_entity')
      expect(plan.join('\n')).not.toContain('Sort')
    } finally {
      await sync.close()
      await database.close()
    }
  }, 180_000)
})
