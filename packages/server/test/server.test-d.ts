// Type tests for the server's options past one machine: read replicas and cacheable pages.
import { describe, expectTypeOf, it } from 'vitest'
import {
  createSyncHandler,
  insecureNoAuth,
  openPostgres,
  type Database,
  type PageOptions,
  type SyncHandler,
  type SyncHandlerOptions,
} from '@changecast/server'

declare const primary: Database
declare const replica: Database

describe('createSyncHandler: read replicas and cacheable pages', () => {
  it('takes one replica, a promise of one, or several', () => {
    createSyncHandler({ database: primary, authenticate: insecureNoAuth, readDatabase: replica })
    createSyncHandler({ database: primary, authenticate: insecureNoAuth, readDatabase: openPostgres('postgres://r') })
    createSyncHandler({
      database: primary,
      authenticate: insecureNoAuth,
      readDatabase: [replica, openPostgres('postgres://r2')],
      maxReplicaLag: 2000,
    })
    // @ts-expect-error a URL is not a database: open it first
    createSyncHandler({ database: primary, authenticate: insecureNoAuth, readDatabase: 'postgres://r' })
  })

  it('turns pages on with true or with options', () => {
    expectTypeOf<SyncHandlerOptions['pages']>().toEqualTypeOf<boolean | PageOptions | undefined>()
    expectTypeOf<PageOptions>().toEqualTypeOf<{ revisions?: number; ttl?: number }>()
    createSyncHandler({ database: primary, authenticate: insecureNoAuth, pages: { revisions: 500 } })
    // @ts-expect-error revisions is a number
    createSyncHandler({ database: primary, authenticate: insecureNoAuth, pages: { revisions: '500' } })
  })

  it('tells each replica’s state', () => {
    expectTypeOf<SyncHandler['replicas']>().toEqualTypeOf<ReadonlyArray<{ up: boolean; head: number; lag: number }>>()
  })
})
