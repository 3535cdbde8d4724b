export interface SyncServerProcess {
  url: string
  pid: number
  stop(): Promise<unknown>
  output(): string
}
export function startSyncServer(args: string[]): Promise<SyncServerProcess>
export function pushBatch(
  url: string,
  clientId: string,
  rev: number,
  changes: unknown[],
  headers?: Record<string, string>,
): Promise<number>
export function seedRow(id: number, project?: string): Record<string, unknown>
export function seedRows(
  url: string,
  options: {
    from?: number
    count: number
    batch?: number
    row?: (id: number) => unknown
    headers?: Record<string, string>
    clientId?: string
  },
): Promise<void>
export function signToken(secret: string, sub: string, claims?: Record<string, unknown>): string
