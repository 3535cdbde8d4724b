export declare function findPostgres(): string | undefined
export declare function ensurePostgres(): string
export declare function startPostgres(): Promise<{ url: string; stop(): void }>
