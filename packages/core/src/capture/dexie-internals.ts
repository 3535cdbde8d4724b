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
 */

/** True for the native transaction of an application's `db.transaction()`. */
export function isExplicit(trans: object): boolean {
  return (trans as { _explicit?: boolean })._explicit === true
}
