import { describe } from 'vitest'
import { captureDefectsSuite } from './suites/capture-defects.suite.js'

describe('capture and delivery regressions (Node, fake-indexeddb)', captureDefectsSuite)
