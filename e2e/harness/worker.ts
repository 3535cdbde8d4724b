// A dedicated worker running its own Changecast context, driven by messages from the page.
import { openContext, type Context } from './context'

let context: Context | undefined

self.onmessage = async (event: MessageEvent<{ id: number; cmd: string; args: unknown[] }>) => {
  const { id, cmd, args } = event.data
  try {
    let result: unknown
    if (cmd === 'open') {
      context = await openContext(args[0] as string)
      result = context.origin
    } else if (cmd === 'write') {
      result = await context!.write(args[0] as number, args[1] as number)
    } else if (cmd === 'seen') {
      result = context!.seen
    } else {
      throw new Error(`unknown command ${cmd}`)
    }
    self.postMessage({ id, result })
  } catch (error) {
    self.postMessage({ id, error: String(error) })
  }
}
