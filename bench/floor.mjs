// pnpm bench:floor: the least any capture can cost, measured with raw IndexedDB in headless
// Chromium (no Dexie, no Changecast). A captured write must also read what it replaces
// (create or update? previous value?) and write its changelog row in the same transaction,
// so the floor of its ratio to the raw write is:
//   clear of 10,000 rows:  getAll + clear   vs  clear  (and with the row of previous values added)
//   one put:               get + put + add (row)  vs  put
//   bulkDelete of 10,000:  getAll (values read) + deletes + add (row of previous values)  vs  deletes
//   one update:            get, then put + add (row)  vs  get, then put
//   modify of 10,000:      gets, then puts + add (row of 10,000 changes)  vs  gets, then puts
// The last two are what Dexie's own `update()` and `modify()` do (read, then write): Dexie's
// hooks get the values it read for free, so the changelog row is all a capture adds there.
// Each measured the same way as `pnpm bench`: paired rounds, medians of the ratios.
import { chromium } from 'playwright-core'
import { createServer } from 'vite'
import { chromiumArgs, ensureChromium } from '../scripts/chromium.mjs'

const rounds = Number(process.argv.find((arg) => arg.startsWith('--rounds='))?.split('=')[1] ?? 9)
const server = await createServer({
  configFile: 'bench/page/vite.config.ts',
  server: { port: 0, hmr: false, watch: null },
})
await server.listen()
const browser = await chromium.launch({ executablePath: ensureChromium(), args: chromiumArgs })
try {
  const page = await (await browser.newContext()).newPage()
  await page.goto(server.resolvedUrls.local[0])
  const result = await page.evaluate(async (rounds) => {
    const request = (r) =>
      new Promise((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))))
    const done = (tx) =>
      new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = tx.onerror = () => reject(tx.error))))
    const open = async (name) => {
      const r = indexedDB.open(name, 1)
      r.onupgradeneeded = () => {
        r.result.createObjectStore('items', { keyPath: 'id' })
        r.result.createObjectStore('log', { autoIncrement: true })
      }
      return request(r)
    }
    // The changelog row of deleted rows: each change as the changelog stores it, with its previous value.
    const logDeletes = (tx, removed, round) =>
      tx.objectStore('log').add({
        tx: round,
        changes: removed.map((previous) => ({ type: 'delete', table: 'items', key: previous.id, previous })),
      })
    const rows = (n) => Array.from({ length: n }, (_, id) => ({ id, v: 0, title: `task ${id}`, done: id % 2 === 0 }))
    const seed = async (db) => {
      const tx = db.transaction('items', 'readwrite')
      for (const row of rows(10_000)) tx.objectStore('items').put(row)
      await done(tx)
    }
    const time = async (work) => {
      const start = performance.now()
      await work()
      return performance.now() - start
    }
    const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
    const clear = []
    const clearLogged = []
    const put = []
    const bulkDelete = []
    const update = []
    const modify = []
    // Dexie's update() and modify(): read the rows, wait for them, then write new values.
    const readThenWrite = async (db, ids, round, log) => {
      const tx = db.transaction(log ? ['items', 'log'] : ['items'], 'readwrite')
      const store = tx.objectStore('items')
      const reads = ids.map((id) => request(store.get(id)))
      const found = await Promise.all(reads)
      const changes = []
      for (const previous of found) {
        const value = { ...previous, v: round }
        store.put(value)
        if (log)
          changes.push({
            type: 'update',
            table: 'items',
            key: value.id,
            value,
            changes: { v: round },
            undo: { v: previous.v },
          })
      }
      if (log) tx.objectStore('log').add({ tx: round, changes })
      return done(tx)
    }
    for (let round = 0; round < rounds; round++) {
      const db = await open(`floor-${round}-${Date.now()}`)
      await seed(db)
      const rawClear = await time(() => {
        const tx = db.transaction('items', 'readwrite')
        tx.objectStore('items').clear()
        return done(tx)
      })
      await seed(db)
      const readClear = await time(() => {
        const tx = db.transaction(['items', 'log'], 'readwrite')
        const store = tx.objectStore('items')
        store.getAll()
        store.clear()
        return done(tx)
      })
      clear.push(readClear / rawClear)
      await seed(db)
      const loggedClear = await time(() => {
        const tx = db.transaction(['items', 'log'], 'readwrite')
        const store = tx.objectStore('items')
        const read = store.getAll()
        store.clear()
        read.onsuccess = () => {
          logDeletes(tx, read.result, round)
        }
        return done(tx)
      })
      clearLogged.push(loggedClear / rawClear)
      const rawPut = await time(async () => {
        for (let id = 0; id < 1000; id++) {
          const tx = db.transaction('items', 'readwrite')
          tx.objectStore('items').put({ id, v: round, title: 'x', done: false })
          await done(tx)
        }
      })
      const capturedPut = await time(async () => {
        for (let id = 0; id < 1000; id++) {
          const tx = db.transaction(['items', 'log'], 'readwrite')
          const store = tx.objectStore('items')
          store.get(id)
          store.put({ id, v: round + 1, title: 'x', done: false })
          tx.objectStore('log').add({ tx: id })
          await done(tx)
        }
      })
      put.push(capturedPut / rawPut)
      await seed(db)
      const rawDelete = await time(() => {
        const tx = db.transaction('items', 'readwrite')
        for (let id = 0; id < 10_000; id++) tx.objectStore('items').delete(id)
        return done(tx)
      })
      await seed(db)
      const capturedDelete = await time(() => {
        const tx = db.transaction(['items', 'log'], 'readwrite')
        const store = tx.objectStore('items')
        const read = store.getAll(IDBKeyRange.bound(0, 9_999))
        for (let id = 0; id < 10_000; id++) store.delete(id)
        // The events need the values, and the row holds them: each change as the changelog stores it.
        read.onsuccess = () => {
          logDeletes(tx, read.result, round)
        }
        return done(tx)
      })
      bulkDelete.push(capturedDelete / rawDelete)
      await seed(db)
      const ids = Array.from({ length: 10_000 }, (_, id) => id)
      const single = async (log, base) => {
        for (let id = 0; id < 1000; id++) await readThenWrite(db, [id], base + id, log)
      }
      // Which of the pair runs first alternates from round to round.
      const pair = async (bare, captured) => {
        const first = round % 2 ? await time(captured) : await time(bare)
        const second = round % 2 ? await time(bare) : await time(captured)
        return round % 2 ? first / second : second / first
      }
      update.push(
        await pair(
          () => single(false, 1),
          () => single(true, 2),
        ),
      )
      modify.push(
        await pair(
          () => readThenWrite(db, ids, round * 2 + 1, false),
          () => readThenWrite(db, ids, round * 2 + 2, true),
        ),
      )
      db.close()
    }
    return {
      clear: median(clear),
      clearLogged: median(clearLogged),
      put: median(put),
      bulkDelete: median(bulkDelete),
      update: median(update),
      modify: median(modify),
    }
  }, rounds)
  console.log(`[bench:floor] ${rounds} rounds, medians of paired ratios (raw IndexedDB, no Dexie):`)
  console.log(`  clear-10k: getAll + clear = ${result.clear.toFixed(2)}× a bare clear (target for capture: ≤ 6×)`)
  console.log(`  clear-10k: getAll + clear + log add = ${result.clearLogged.toFixed(2)}× a bare clear`)
  console.log(
    `  put-1k-single: get + put + log add = ${result.put.toFixed(2)}× a bare put (target for capture: ≤ 1.10×)`,
  )
  console.log(
    `  bulkDelete-10k: getAll + deletes + log add = ${result.bulkDelete.toFixed(2)}× bare deletes (target for capture: ≤ 1.15×)`,
  )
  console.log(
    `  update-1k-single: get, then put + log add = ${result.update.toFixed(2)}× get, then put (Dexie hooks add no request here)`,
  )
  console.log(
    `  modify-10k: gets, then puts + log add = ${result.modify.toFixed(2)}× gets, then puts (Dexie hooks add no request here)`,
  )
} finally {
  await browser.close()
  await server.close()
}
