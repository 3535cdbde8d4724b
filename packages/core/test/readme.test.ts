import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import Dexie from 'dexie'

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8')

describe('README usage example', () => {
  afterEach(async () => {
    vi.restoreAllMocks()
    await Dexie.delete('app')
  })

  it('is the example file, verbatim', () => {
    const readme = read('../../../README.md')
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(block).toBe(read('./fixtures/readme-example.ts'))
  })

  it('runs as written and logs what its comments say', async () => {
    const lines: string[] = []
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      lines.push(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' '))
    })
    await import('./fixtures/readme-example.js')
    expect(lines).toEqual([
      'create 1 {"id":1,"title":"Write docs","done":false}',
      'update 1 {"done":true}',
      'delete 1 {"id":1,"title":"Write docs","done":true}',
    ])
  })
})

describe('the protocol shipped in the package', () => {
  it('is docs/protocol.md, verbatim (copy it over after editing the doc)', () => {
    expect(read('../protocol.md')).toBe(read('../../../docs/protocol.md'))
  })
})
