import { backends } from './backends.js'
import { protocolSuite } from './protocol.suite.js'

for (const backend of backends) protocolSuite(backend)
