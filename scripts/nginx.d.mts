export declare function ensureNginx(): string
export declare function proxyConfig(dir: string, port: number, origin: string): string
export declare function startCachingProxy(origin: string): Promise<{
  url: string
  /** One entry per request nginx answered: its URI, status and cache status (HIT, MISS, UPDATING, -). */
  cacheLog(): Array<{ uri: string; status: number; cache: string }>
  stop(): Promise<void>
}>
