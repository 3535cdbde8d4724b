import { describe } from 'vitest'
import { differentialSuite } from './suites/differential.suite.js'

describe('differential fuzz: plain Dexie vs Dexie + Changecast (Node, fake-indexeddb)', () => differentialSuite(60))
