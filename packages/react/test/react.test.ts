// @vitest-environment happy-dom
import { describe } from 'vitest'
import { bindingsConformance } from '../../core/test/conformance/bindings-spec.js'
import { reactDriver } from './driver.js'
import { strictModeSuite } from './strict-mode.js'

describe('@changecast/react (Node, happy-dom, fake-indexeddb)', () => {
  bindingsConformance(reactDriver)
  strictModeSuite()
})
