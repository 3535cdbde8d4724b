export { httpSync } from './http-sync.js'
export type { BackoffOptions, HttpSyncOptions } from './options.js'
export { setAsideActions, type SetAsideActions } from './set-aside.js'
export { stream, type StreamTransport } from './stream.js'
export { userSwitching, type UserSwitching } from './sign-out.js'
export { backoffDelay, isRetryable, retryAfterMs, MAX_RETRY_AFTER } from './backoff.js'
export { readEvents } from './sse.js'
export type { ServerEvent } from './sse.js'
export {
  checkWireValue,
  decodeWireKey,
  encodeWireKey,
  LIMITS,
  parseHello,
  parsePullReply,
  parsePushReply,
  parsePushRequest,
  wireKeyText,
  parseRemoteBatch,
  PROTOCOL_VERSION,
  ProtocolViolation,
  WireError,
} from './protocol.js'
export type {
  PullReply,
  PushBatch,
  PushReply,
  PushRequest,
  RemoteBatch,
  StreamHello,
  WireChange,
  WireCurrent,
  WireKey,
  WireRejection,
} from './protocol.js'
