/**
 * The one module that reads a private field of Dexie's. Changecast never writes one: Dexie's
 * own state (its `_cache` of values read in a transaction, keyed by primary key only) is
 * Dexie's alone, and filling it once corrupted another table's update.
 *
 * Each read is listed here, and `dexie-internals.test.ts` (Node and Chromium) has a test per
 * read that fails when a Dexie release changes it:
 *
 * 1. `IDBTransaction._explicit` — Dexie sets it on the native transaction of `db.transaction()`.
 *    Without it, Dexie opened the transaction around one operation (`put`, `bulkPut`,
 *    `update()`…) and calls `commit()` on it when that operation is done.
 * 2. `IDBTransaction._cache` — the values Dexie's last cached read (`getMany` with `cache`)
 *    found, kept until a write that is not an `add`, keyed by primary key only. While it is
 *    set, Dexie may answer the next cached read from it, for any table of the transaction;
 *    Changecast only asks whether it is empty (then Dexie reads from IndexedDB).
 */

/** True for the native transaction of an application's `db.transaction()`. */
export function isExplicit(trans: object): boolean {
  return (trans as { _explicit?: boolean })._explicit === true
}

/** True while Dexie keeps values of an earlier cached read in the transaction (its next cached read may come from them). */
export function hasDexieCache(trans: object): boolean {
  return (trans as { _cache?: unknown })._cache != null
}
