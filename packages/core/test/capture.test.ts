import { describe } from 'vitest'
import { captureSuite } from './suites/capture.suite.js'

describe('capture (Node, fake-indexeddb)', captureSuite)
