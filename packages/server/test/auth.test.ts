// Authentication, client-id binding, rules and validation of the real server, on PGlite and
// on a real PostgreSQL: every refusal is a 4xx with a message, and nothing is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { z } from 'zod'
import type { PullReply, PushReply } from '@changecast/core/sync'
import { jwt } from '@changecast/server'
import { scopeByField } from '../src/cli.js'
import { startServer, type Backend, type TestServer } from './backends.js'

const BASE = 'http://sync.test'
const SECRET = 'a-test-secret-of-enough-length-for-hs256'
const secret = new TextEncoder().encode(SECRET)

const token = (
  sub: string | undefined,
  { expires = '1h', issuer, audience }: Record<string, string | undefined> = {},
) => {
  const signer = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expires)
  if (sub !== undefined) signer.setSubject(sub)
  if (issuer) signer.setIssuer(issuer)
  if (audience) signer.setAudience(audience)
  return signer.sign(secret)
}

const todo = (rev: number, key: number, value: unknown) => ({
  rev,
  tx: `tx-${rev}`,
  at: 1,
  changes: [{ type: 'create', table: 'todos', key, value }],
})

function requests(server: () => TestServer) {
  const send = (path: string, init: RequestInit & { bearer?: string } = {}) =>
    server().handle(
      new Request(`${BASE}${path}`, {
        ...init,
        headers: {
          'content-type': 'application/json',
          ...(init.bearer ? { authorization: `Bearer ${init.bearer}` } : {}),
        },
      }),
    )
  const push = (bearer: string | undefined, clientId: string, batches: unknown[]) =>
    send('/push', { method: 'POST', body: JSON.stringify({ v: 2, clientId, batches }), bearer })
  const error = async (response: Response) => ((await response.json()) as { error: string }).error
  /** Every batch in the log, as another (authenticated) client sees it. */
  const stored = async (bearer: string) => {
    const response = await send('/pull?v=2&since=0&limit=1000&clientId=observer', { bearer })
    expect(response.status).toBe(200)
    return ((await response.json()) as PullReply).batches
  }
  return { send, push, error, stored }
}

for (const backend of ['pglite', 'postgres'] satisfies Backend[]) {
  describe(`authentication on the ${backend} server`, () => {
    let server: TestServer
    let jwks: Server
    let privateKey: CryptoKey
    beforeAll(async () => {
      server = await startServer(backend, {
        authenticate: jwt({ secret: SECRET, issuer: 'https://id.test', audience: 'app' }),
      })
      ;({ privateKey } = await generateKeyPair('RS256'))
    })
    afterAll(async () => {
      await server.close()
      jwks?.close()
    })
    const { send, push, error, stored } = requests(() => server)
    const good = (sub: string, extra: Record<string, string> = {}) =>
      token(sub, { issuer: 'https://id.test', audience: 'app', ...extra })

    it('accepts a valid token and binds the client id to its subject', async () => {
      const response = await push(await good('alice'), 'alice-tab', [todo(1, 1, { id: 1, title: 'mine' })])
      expect(response.status).toBe(200)
      expect(((await response.json()) as PushReply).acked).toEqual([{ rev: 1, serverRev: expect.any(Number) }])
    })

    const refusals: Array<[string, () => Promise<string | undefined>, RegExp]> = [
      ['no token', () => Promise.resolve(undefined), /missing bearer token/],
      ['an expired token', () => good('alice', { expires: '-1m' }), /expired/],
      [
        'a token signed with another secret',
        () =>
          new SignJWT({ sub: 'alice', iss: 'https://id.test', aud: 'app' })
            .setProtectedHeader({ alg: 'HS256' })
            .setExpirationTime('1h')
            .sign(new TextEncoder().encode('another-secret-of-enough-length-too')),
        /not valid/,
      ],
      ['a token of another issuer', () => good('alice', { issuer: 'https://evil.test' }), /not accepted.*iss/],
      ['a token for another audience', () => good('alice', { audience: 'other' }), /not accepted.*aud/],
      ['a token without subject', () => token(undefined, { issuer: 'https://id.test', audience: 'app' }), /no subject/],
      ['a token that is not a JWT', () => Promise.resolve('not.a.jwt'), /not valid/],
      ['a token with alg none', () => Promise.resolve(unsignedToken()), /not valid/],
    ]
    for (const [name, make, message] of refusals) {
      it(`answers a push with ${name} with 401, a message and WWW-Authenticate, and stores nothing`, async () => {
        const before = await stored(await good('observer'))
        const response = await push(await make(), 'mallory-tab', [todo(1, 666, { id: 666, title: 'sneaky' })])
        expect(response.status).toBe(401)
        expect(response.headers.get('www-authenticate')).toBe('Bearer')
        expect(await error(response)).toMatch(message)
        expect(await stored(await good('observer'))).toEqual(before)
        for (const path of ['/pull?v=2&since=0&clientId=mallory-tab', '/stream?v=2&since=0&clientId=mallory-tab']) {
          const bearer = await make()
          expect((await send(path, { bearer })).status).toBe(401)
        }
      })
    }

    it("refuses to push, pull or stream as another user's client id (403), and stores nothing", async () => {
      const alice = await good('alice')
      const bob = await good('bob')
      expect((await push(alice, 'alice-laptop', [todo(1, 10, { id: 10, title: 'a' })])).status).toBe(200)
      const before = await stored(await good('observer'))
      const forged = await push(bob, 'alice-laptop', [todo(2, 11, { id: 11, title: 'forged' })])
      expect(forged.status).toBe(403)
      expect(await forged.clone().json()).toMatchObject({ code: 'principal-changed' })
      expect(await error(forged)).toMatch(/belongs to another user/)
      expect((await send('/pull?v=2&since=0&clientId=alice-laptop', { bearer: bob })).status).toBe(403)
      expect((await send('/stream?v=2&since=0&clientId=alice-laptop', { bearer: bob })).status).toBe(403)
      expect(await stored(await good('observer'))).toEqual(before)
      // Alice herself still can.
      expect((await push(alice, 'alice-laptop', [todo(2, 11, { id: 11, title: 'hers' })])).status).toBe(200)
    })

    it('names the principal in every reply: the same for one user on every request, never their id', async () => {
      const alice = await good('alice@example.com')
      const names = new Set<unknown>()
      const pushed = await push(alice, 'alice-phone', [todo(1, 20, { id: 20, title: 'x' })])
      names.add(((await pushed.json()) as PushReply).principal)
      const pulled = await send('/pull?v=2&since=0&clientId=alice-phone', { bearer: alice })
      names.add(((await pulled.json()) as PullReply).principal)
      const snapshot = await send('/snapshot?v=2&clientId=alice-phone', { bearer: alice })
      names.add(((await snapshot.json()) as { principal?: string }).principal)
      const stream = await send('/stream?v=2&since=0&clientId=alice-phone', { bearer: alice })
      const reader = stream.body!.getReader()
      const first = new TextDecoder().decode((await reader.read()).value)
      await reader.cancel()
      names.add((JSON.parse(/data: (.*)/.exec(first)![1]!) as { principal?: string }).principal)
      expect(names.size).toBe(1)
      const [name] = names as Set<string>
      expect(name).toMatch(/^[\w-]{16,200}$/)
      expect(name).not.toMatch(/alice/)
      const bob = await good('bob@example.com')
      const other = await send('/pull?v=2&since=0&clientId=bob-phone', { bearer: bob })
      expect(((await other.json()) as PullReply).principal).not.toBe(name)
    })

    it('checks tokens against a JSON Web Key Set (RS256)', async () => {
      const { publicKey, privateKey: signing } = await generateKeyPair('RS256')
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }
      jwks = createServer((_, response) => {
        response.setHeader('content-type', 'application/json')
        response.end(JSON.stringify({ keys: [jwk] }))
      })
      await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
      const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`
      const authenticate = jwt({ jwksUrl: url })
      const sign = (key: CryptoKey) =>
        new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setExpirationTime('1h').sign(key)
      const request = async (key: CryptoKey) =>
        new Request(BASE, { headers: { authorization: `Bearer ${await sign(key)}` } })
      expect(await authenticate(await request(signing))).toMatchObject({ id: 'carol' })
      await expect(Promise.resolve(authenticate(await request(privateKey)))).rejects.toThrow(/not valid/)
    })
  })

  describe(`the scope field on the ${backend} server`, () => {
    let server: TestServer
    beforeAll(async () => {
      server = await startServer(backend, { scopeOf: scopeByField('sc') })
    })
    afterAll(() => server.close())
    const { push } = requests(() => server)

    it('refuses a value without the scope field naming the entity once (no repeated prefix)', async () => {
      const response = await push(undefined, 'scope-field', [
        { rev: 1, tx: 'tx-1', at: 1, changes: [{ type: 'create', table: 'items', key: 3, value: { id: 3 } }] },
      ])
      const reply = (await response.json()) as PushReply
      expect(reply.rejected.map(({ code, reason }) => [code, reason])).toEqual([
        ['invalid', 'items 3: the value has no sc (the scope field)'],
      ])
    })

    it('refuses a scope over 256 characters (it is indexed) with invalid, not a 500', async () => {
      const response = await push(undefined, 'scope-long', [
        {
          rev: 1,
          tx: 'tx-1',
          at: 1,
          changes: [{ type: 'create', table: 'items', key: 4, value: { id: 4, sc: 'x'.repeat(300) } }],
        },
      ])
      expect(response.status).toBe(200)
      const reply = (await response.json()) as PushReply
      expect(reply.rejected.map(({ code, reason }) => [code, reason])).toEqual([
        ['invalid', 'items 4: the scope must have 1–256 characters'],
      ])
    })
  })

  describe(`rules on the ${backend} server`, () => {
    let server: TestServer
    beforeAll(async () => {
      server = await startServer(backend, {
        tables: {
          todos: { schema: z.object({ id: z.number(), title: z.string().min(1, 'a title is required') }) },
          notes: {},
        },
        authorize: ({ principal, change }) =>
          change.table === 'notes' && change.type === 'delete' ? `${principal.id} may not delete notes` : true,
        maxBatches: 3,
      })
    })
    afterAll(() => server.close())
    const { push, error, stored } = requests(() => server)

    it("rejects a batch whose value fails the table's schema, with the validator's message and the current value", async () => {
      expect((await push(undefined, 'rules-a', [todo(1, 1, { id: 1, title: 'ok' })])).status).toBe(200)
      const response = await push(undefined, 'rules-a', [todo(2, 1, { id: 1, title: '' }), todo(3, 2, { id: 2 })])
      expect(response.status).toBe(200)
      const reply = (await response.json()) as PushReply
      expect(reply.acked).toEqual([])
      expect(reply.rejected).toEqual([
        {
          rev: 2,
          code: 'invalid',
          reason: 'todos 1: title: a title is required',
          serverRev: expect.any(Number),
          current: [{ table: 'todos', key: 1, value: { id: 1, title: 'ok' } }],
        },
        {
          rev: 3,
          code: 'invalid',
          reason: expect.stringMatching(/^todos 2: title: /),
          serverRev: expect.any(Number),
          current: [{ table: 'todos', key: 2 }],
        },
      ])
    })

    it('rejects a batch the authorize rule refuses, with its reason', async () => {
      expect(
        (
          await push(undefined, 'rules-b', [
            { ...todo(1, 5, { id: 5 }), changes: [{ type: 'create', table: 'notes', key: 5, value: { id: 5 } }] },
          ])
        ).status,
      ).toBe(200)
      const response = await push(undefined, 'rules-b', [
        { rev: 2, tx: 'tx-2', at: 1, changes: [{ type: 'delete', table: 'notes', key: 5 }] },
      ])
      const reply = (await response.json()) as PushReply
      expect(reply.rejected).toEqual([
        {
          rev: 2,
          code: 'forbidden',
          reason: 'anonymous may not delete notes',
          serverRev: expect.any(Number),
          current: [{ table: 'notes', key: 5, value: { id: 5 } }],
        },
      ])
    })

    it('answers a change to a table the server does not sync with 400, and stores nothing of the request', async () => {
      const before = await stored('unused')
      const response = await push(undefined, 'rules-c', [
        todo(1, 9, { id: 9, title: 'fine' }),
        { rev: 2, tx: 'tx-2', at: 1, changes: [{ type: 'create', table: 'secrets', key: 1, value: {} }] },
      ])
      expect(response.status).toBe(400)
      expect(await error(response)).toBe('table "secrets" is not synced by this server')
      expect(await stored('unused')).toEqual(before)
    })

    it('security: a table named after a prototype property (constructor, __proto__, toString…) is not in the table list: 400, nothing stored', async () => {
      const before = await stored('unused')
      for (const [i, table] of Object.getOwnPropertyNames(Object.prototype).entries()) {
        const response = await push(undefined, `rules-proto-${i}`, [
          { rev: 1, tx: 'tx-1', at: 1, changes: [{ type: 'create', table, key: 1, value: {} }] },
        ])
        expect([table, response.status]).toEqual([table, 400])
        expect(await error(response)).toBe(`table ${JSON.stringify(table)} is not synced by this server`)
      }
      expect(await stored('unused')).toEqual(before)
    })

    it('answers a push with more batches than maxBatches with 413, and stores none of them', async () => {
      const before = await stored('unused')
      const batches = [1, 2, 3, 4].map((rev) => todo(rev, 20 + rev, { id: 20 + rev, title: 'many' }))
      const response = await push(undefined, 'rules-d', batches)
      expect(response.status).toBe(413)
      expect(await error(response)).toBe('at most 3 batches per push')
      expect(await stored('unused')).toEqual(before)
      const fits = await push(undefined, 'rules-d', batches.slice(0, 3))
      expect(((await fits.json()) as PushReply).acked.map((ack) => ack.rev)).toEqual([1, 2, 3])
    })
  })
}

/** A JWT with `alg: none` and no signature. */
function unsignedToken(): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none' })}.${part({ sub: 'alice', iss: 'https://id.test', aud: 'app' })}.`
}
