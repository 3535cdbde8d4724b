// Vitest global setup: a throwaway PostgreSQL for the server suites (DATABASE_URL wins).
// If none can be had, the suites that need it fail with the reason; the others still run.
import type { TestProject } from 'vitest/node'
import { startPostgres } from './postgres.mjs'

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server URL, or '' when none could be started. */
    databaseUrl: string
    /** Why there is no PostgreSQL, when there is none. */
    databaseProblem: string
  }
}

export default async function setup(project: TestProject): Promise<(() => void) | undefined> {
  if (process.env.DATABASE_URL) {
    project.provide('databaseUrl', process.env.DATABASE_URL)
    project.provide('databaseProblem', '')
    return undefined
  }
  try {
    const postgres = await startPostgres()
    project.provide('databaseUrl', postgres.url)
    project.provide('databaseProblem', '')
    return () => postgres.stop()
  } catch (error) {
    project.provide('databaseUrl', '')
    project.provide('databaseProblem', (error as Error).message)
    console.warn(`[changecast] PostgreSQL suites cannot run: ${(error as Error).message}`)
    return undefined
  }
}
