import { describe } from 'vitest'
import { captureSuite } from './suites/capture.suite.js'

describe('capture (Chromium, native IndexedDB)', captureSuite)
