import { describe } from 'vitest'
import { crossContextSuite } from './suites/cross-context.suite.js'

describe('changelog and cross-context delivery (Chromium)', crossContextSuite)
