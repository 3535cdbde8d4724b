import { describe } from 'vitest'
import { bindingsConformance } from '../../core/test/conformance/bindings-spec.js'
import { solidDriver } from './driver.js'

describe('@changecast/solid (Chromium)', () => {
  bindingsConformance(solidDriver)
})
