import Dexie from 'dexie'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  changecast,
  NotCloneableError,
  type ChangeBatch,
  type ChangecastError,
  type ChangeEvent,
} from '@changecast/core'
import { Bus } from '../src/transport/bus.js'
import { Delivery } from '../src/transport/delivery.js'
import { DEFAULT_RETENTION, openLog } from '../src/log/changelog.js'

describe('Delivery', () => {
  const cleanup: Array<() => unknown> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  it('still delivers locally when a batch cannot be cloned, and sends a notice that makes others read the changelog', async () => {
    const name = `clone-${Date.now()}`
    const db = new Dexie(name)
    db.version(1).stores({ items: 'id' })
    const receiver = changecast(db)
    const received: ChangeBatch[] = []
    receiver.onBatch((batch) => received.push(batch))
    await db.open()
    cleanup.push(
      () => Dexie.delete(name),
      () => db.close(),
      () => receiver.close(),
    )

    // The sending context: commits a row normally, then hands its batch to the channel
    // with a value that structured clone refuses.
    const writerDb = new Dexie(name)
    writerDb.version(1).stores({ items: 'id' })
    const writer = changecast(writerDb, { channel: false })
    await writerDb.open()
    cleanup.push(
      () => writerDb.close(),
      () => writer.close(),
    )
    await writerDb.table('items').put({ id: 1, v: 1 })
    const [committed] = await writer.since(0)

    const bus = new Bus()
    const local: ChangeBatch[] = []
    const errors: ChangecastError[] = []
    bus.onBatch((batch) => local.push(batch))
    bus.onError((error) => errors.push(error))
    const delivery = new Delivery({
      db: writerDb,
      origin: writer.origin,
      bus,
      log: DEFAULT_RETENTION,
      channel: `changecast:${name}`,
      isTable: () => true,
      resync: () => {},
    })
    cleanup.push(() => delivery.close())
    // The same log as the receiver's (messages of another database generation are ignored),
    // from before the commit it is about to hand on.
    delivery.start({ id: (await openLog(writerDb)).id, rev: 0 })
    const uncloneable = {
      ...committed!,
      events: committed!.events.map((e) => ({ ...e, value: { fn: () => 1 } }) as ChangeEvent),
    }
    delivery.local(uncloneable)

    expect(local).toEqual([uncloneable])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(NotCloneableError)
    expect(errors[0]!.message).toMatch(/could not be sent to other tabs/)
    // The receiver reads the commit from the changelog instead.
    await vi.waitFor(() => expect(received.map((batch) => [batch.rev, batch.source])).toEqual([[1, 'tab']]))
    expect(received[0]!.events[0]!.value).toEqual({ id: 1, v: 1 })
  })
})
