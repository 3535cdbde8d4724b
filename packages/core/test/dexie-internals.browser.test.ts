import { describe } from 'vitest'
import { dexieInternalsSuite } from './suites/dexie-internals.suite.js'

describe("Dexie's private fields Changecast reads (Chromium, native IndexedDB)", dexieInternalsSuite)
