/**
 * The sync protocol (docs/protocol.md) as code, for the client and for servers
 * (`@changecast/core/protocol`): its types and limits, keys and values on the wire, the
 * checks of replies a client makes and of requests a server makes.
 */
export * from './wire.js'
export { checkDepth, checkWireValue, decodeWireKey, encodeWireKey, isRecord, short } from './wire-values.js'
export {
  checkWireChange,
  parseHello,
  parsePullReply,
  parsePushReply,
  parseRemoteBatch,
  parseSnapshotReply,
} from './replies.js'
export { isName, nameRule, parsePushRequest, parseRevision, readCappedText, wireKeyText } from './requests.js'
export {
  applyOp,
  applyPatch,
  MergeError,
  mergedTooLarge,
  mergeUpdate,
  mergeValue,
  namesItsPaths,
  patchProblem,
  valueAt,
  type FieldOp,
} from './merge.js'
