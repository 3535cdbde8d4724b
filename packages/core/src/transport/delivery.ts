import type Dexie from 'dexie'
import { ChangecastError, NotCloneableError } from '../errors.js'
import { compactLog, LOG_TABLE, readLog, rowToBatch, type LogRetention, type LogRow } from '../log/changelog.js'
import type { ChangeBatch } from '../types.js'
import type { Bus } from './bus.js'
import { ENVELOPE_VERSION, receivedBatch, validateEnvelope, type Envelope } from './envelope.js'
import { watchLifecycle } from './lifecycle.js'
import { classifySeq, Sequencer, wasCompacted, type RangeRead } from './sequencer.js'
import { openTabChannel, type TabChannel } from './tab-channel.js'

/** Why a context may have missed changes it cannot replay, so that a UI should reload its data. */
export interface ResyncInfo {
  /**
   * - `missed-messages`: messages from another context were lost and there is no changelog;
   * - `log-compacted`: the missed batches were already compacted out of the changelog;
   * - `log-unreadable`: the changelog could not be read;
   * - `log-reset`: the database was deleted and created again (or its changelog went back),
   *   so revs started over;
   * - `server-refetch`: the sync server compacted its log past this client's position, so the
   *   client fetched a new snapshot of its scopes (in the context that syncs);
   * - `server-snapshot`: this context missed the messages of a snapshot the sync loaded from
   *   the server (in another context, or while asleep), and the changelog records a
   *   snapshot's pages without their values.
   */
  reason: 'missed-messages' | 'log-compacted' | 'log-unreadable' | 'log-reset' | 'server-refetch' | 'server-snapshot'
  /** The context whose messages were missed, when known. */
  origin?: string
}

export interface DeliveryConfig {
  db: Dexie
  origin: string
  bus: Bus
  /** Changelog retention, or `undefined` when the changelog is off. */
  log: Required<LogRetention> | undefined
  /** Channel name, or `false` for no cross-tab delivery. */
  channel: string | false
  /** True for the tables events may name: declared and captured. */
  isTable: (name: string) => boolean
  resync(info: ResyncInfo): void
}

/** Run compaction after this many local commits. */
const COMPACT_EVERY = 200

/**
 * A logged batch with more events than this crosses to other contexts as a notice: they
 * read it from the changelog (one read there) instead of this context cloning every event
 * for the channel while the application waits.
 */
const NOTICE_OVER = 1000

/**
 * Gets committed batches to subscribers in order, exactly once: local commits, batches
 * from other tabs and workers (over BroadcastChannel), and replays from the changelog
 * when something was missed.
 */
export class Delivery {
  #seq = 0
  readonly #seen = new Map<string, number>()
  readonly #sequencer: Sequencer | undefined
  readonly #channel: TabChannel | undefined
  readonly #stopLifecycle: () => void
  readonly #keepers = new Set<() => number | Promise<number>>()
  #commits = 0
  #compacting = false
  /** The changelog's identity, once the database opened (see `openLog`). */
  #logId: string | undefined

  readonly #config: DeliveryConfig

  constructor(config: DeliveryConfig) {
    this.#config = config
    const { bus, log, channel } = config
    if (log) {
      this.#sequencer = new Sequencer(
        (batch) => batch.events.length > 0 && bus.publish(batch),
        (after) => this.#readRange(after),
        (_after, reason) => config.resync({ reason }),
        (error) => {
          bus.report(
            new ChangecastError('log-unreadable', 'Changecast could not read its changelog.', { cause: error }),
          )
          config.resync({ reason: 'log-unreadable' })
        },
      )
    }
    this.#channel = channel === false ? undefined : openTabChannel(channel, (data) => this.#receive(data))
    this.#stopLifecycle = this.#channel
      ? watchLifecycle(
          () => this.#channel?.suspend(),
          () => {
            this.#channel?.resume()
            void this.catchUp()
          },
        )
      : () => {}
  }

  /** True when batches reach other tabs and workers (a BroadcastChannel is open). */
  get crossTab(): boolean {
    return this.#channel !== undefined
  }

  /** The last delivered changelog rev. */
  get rev(): number | undefined {
    return this.#sequencer?.rev
  }

  /**
   * Called each time the database opens, with its changelog's identity and newest rev. The
   * first time, that rev is the baseline. After a reopen of the same log, what other
   * contexts committed meanwhile is delivered; a log that is new (the database was deleted
   * and created again) or went back starts over from its newest rev, with a resync.
   */
  start({ id, rev }: { id: string; rev: number }): void {
    const known = this.#logId
    this.#logId = id
    const sequencer = this.#sequencer
    if (sequencer) {
      if (known === undefined || sequencer.rev === undefined) sequencer.start(rev)
      else if (known !== id || rev < sequencer.rev) {
        sequencer.reset(rev)
        this.#config.resync({ reason: 'log-reset' })
      } else void sequencer.catchUp()
    }
    void this.#compact()
  }

  /** A transaction of this context committed (`unlogged`: its changelog row holds no changes, see `LogRow.unlogged`). */
  local(batch: ChangeBatch, unlogged?: boolean): void {
    this.#send(batch, unlogged)
    if (this.#sequencer && batch.rev !== undefined) this.#sequencer.offer(batch)
    else this.#config.bus.publish(batch)
    if (this.#config.log && ++this.#commits % COMPACT_EVERY === 0) void this.#compact()
  }

  /** Revs of changelog rows a committed transaction of this context deleted again: nothing to wait for there. */
  skip(revs: readonly number[]): void {
    for (const rev of revs) this.#sequencer?.skip(rev)
  }

  /** Reads the changelog for commits after the last delivered rev, and delivers them. */
  catchUp(): Promise<void> {
    return this.#sequencer ? this.#sequencer.catchUp() : Promise.resolve()
  }

  /** Committed batches after `rev`, from the changelog; rejects when the changelog cannot replay all of them. */
  async since(rev: number): Promise<ChangeBatch[]> {
    const { batches, oldest, unlogged } = await this.#readRange(rev)
    if (unlogged?.size || wasCompacted(rev, oldest)) {
      throw new ChangecastError(
        'history-unavailable',
        `feed.since(${rev}): later commits were compacted or came from a server snapshot; read the tables again.`,
      )
    }
    return batches
  }

  /** Registers the oldest rev something still needs (compaction keeps it). Returns an unregister function. */
  keep(oldestNeeded: () => number | Promise<number>): () => void {
    this.#keepers.add(oldestNeeded)
    return () => this.#keepers.delete(oldestNeeded)
  }

  close(): void {
    this.#stopLifecycle()
    this.#channel?.close()
    this.#sequencer?.close()
  }

  #send(batch: ChangeBatch, unlogged?: boolean): void {
    if (!this.#channel) return
    const envelope = { v: ENVELOPE_VERSION, origin: this.#config.origin, seq: ++this.#seq, log: this.#logId } as const
    // Told, not sent: receivers read the commit from the changelog.
    const notice = (): Envelope => ({ ...envelope, notice: { tx: batch.tx, rev: batch.rev } })
    const logged = this.#sequencer && batch.rev !== undefined && !unlogged
    try {
      this.#channel.post(logged && batch.events.length > NOTICE_OVER ? notice() : { ...envelope, batch })
    } catch (error) {
      // The batch cannot cross (a value the structured clone algorithm refuses).
      try {
        this.#channel.post(notice())
      } catch {
        // The channel itself is gone; receivers notice the gap on the next message.
      }
      this.#config.bus.report(new NotCloneableError(batch.tx, error))
    }
  }

  #receive(data: unknown): void {
    const envelope = validateEnvelope(data, this.#config.isTable)
    if (typeof envelope === 'string') {
      console.warn(`[changecast] Ignored a malformed message on the tab channel: ${envelope}.`)
      return
    }
    const { origin, seq } = envelope
    if (origin === this.#config.origin) return
    // A commit to another generation of the database (deleted and created again): this
    // context reads the new log when it reopens.
    if (envelope.log !== undefined && this.#logId !== undefined && envelope.log !== this.#logId) return
    if ('notice' in envelope) {
      if (classifySeq(this.#seen, origin, seq) === 'duplicate') return
      if (this.#sequencer && envelope.notice.rev !== undefined) void this.#sequencer.catchUp()
      else this.#config.resync({ reason: 'missed-messages', origin })
      return
    }
    const batch = receivedBatch(envelope.batch)
    if (this.#sequencer && batch.rev !== undefined) {
      this.#sequencer.offer(batch)
      return
    }
    const verdict = classifySeq(this.#seen, origin, seq)
    if (verdict === 'duplicate') return
    if (verdict === 'gap') this.#config.resync({ reason: 'missed-messages', origin })
    this.#config.bus.publish(batch)
  }

  async #readRange(after: number): Promise<RangeRead> {
    const { db, origin } = this.#config
    const table = db.table<LogRow, number>(LOG_TABLE)
    return db.transaction('r', table, async () => {
      const rows = await readLog(db, after)
      const oldest = await table.where(':id').above(0).firstKey()
      return {
        batches: rows.map((row) => rowToBatch(row, origin)),
        oldest: typeof oldest === 'number' ? oldest : 0,
        unlogged: new Map(rows.filter((row) => row.unlogged).map((row) => [row.rev, row.unlogged!])),
      }
    })
  }

  async #compact(): Promise<void> {
    const { log, db, bus } = this.#config
    if (!log || this.#compacting || !db.isOpen()) return
    this.#compacting = true
    try {
      const needed = await Promise.all([...this.#keepers].map((keeper) => Promise.resolve(keeper())))
      const keepFrom = Math.min(Infinity, ...needed)
      await compactLog(db, log, keepFrom)
    } catch (error) {
      bus.report(new ChangecastError('log-unreadable', 'Changecast could not compact its changelog.', { cause: error }))
    } finally {
      this.#compacting = false
    }
  }
}
