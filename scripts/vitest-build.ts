// Vitest global setup: the suites that start the server's CLI as a process run its built
// `dist`; build core and server once, before any suite, when their sources are newer.
import { buildPackages } from './build-packages.mjs'

export default function setup(): void {
  buildPackages(['core', 'server'])
}
