// @vitest-environment happy-dom
import { describe } from 'vitest'
import { bindingsConformance } from '../../core/test/conformance/bindings-spec.js'
import { vueDriver } from './driver.js'
import { effectScopeSuite } from './scope.js'

describe('@changecast/vue (Node, happy-dom, fake-indexeddb)', () => {
  bindingsConformance(vueDriver)
  effectScopeSuite()
})
