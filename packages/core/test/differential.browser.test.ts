import { describe } from 'vitest'
import { differentialSuite } from './suites/differential.suite.js'

describe('differential fuzz: plain Dexie vs Dexie + Changecast (Chromium, native IndexedDB)', () =>
  differentialSuite(15))
