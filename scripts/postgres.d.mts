export declare function findPostgres(): string | undefined
export declare function ensurePostgres(): string
export declare function startPostgres(): Promise<{ url: string; port: number; stop(): void }>
export declare function startReplica(primary: { url: string }): Promise<{
  url: string
  port: number
  /** Stops it (its files kept). */
  down(): void
  /** Starts it again. */
  up(): void
  stop(): void
}>
