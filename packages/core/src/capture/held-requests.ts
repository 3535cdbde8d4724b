import Dexie from 'dexie'

/** Requests of one transaction made while a write waits for its read, in the order they were made. */
export interface Holder {
  held?: Array<() => void>
}

/**
 * Makes the request `run` makes now, or, while a write of the transaction waits for its
 * read (see {@link holdRequests}), once that write is made: IndexedDB runs a transaction's
 * requests in the order they are made, so each request still sees what the ones the
 * application made before it did.
 */
export function inOrder<T>(holder: Holder, run: () => Promise<T>): Promise<T> {
  const held = holder.held
  if (!held) return run()
  return new Dexie.Promise<T>((resolve, reject) => {
    held.push(() => {
      run().then(resolve, reject)
    })
  })
}

/**
 * Holds every request the transaction makes from now on. Call the returned function right
 * after making the write that waited: it makes the held requests, in order (and if one of
 * them is a write that waits in turn, the rest stay held behind it).
 */
export function holdRequests(holder: Holder): () => void {
  const queue: Array<() => void> = (holder.held = [])
  return () => {
    if (holder.held === queue) holder.held = undefined
    for (let i = 0; i < queue.length; i++) {
      if (holder.held) {
        holder.held.push(...queue.slice(i))
        return
      }
      queue[i]!()
    }
  }
}
