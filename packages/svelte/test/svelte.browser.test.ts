import { describe } from 'vitest'
import { bindingsConformance } from '../../core/test/conformance/bindings-spec.js'
import { svelteDriver } from './driver.js'
import { componentSuite } from './components.js'

describe('@changecast/svelte (Chromium)', () => {
  bindingsConformance(svelteDriver)
  componentSuite()
})
