import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Validator } from '@seriousme/openapi-schema-validator'
import openapiTS, { astToString } from 'openapi-typescript'
import t from 'tap'
import ts from 'typescript'
import { BffError, createBffClient } from '../client/index.js'
import { Browser } from './support/browser.js'
import { login, signedIn } from './support/flows.js'
import { startStack } from './support/stack.js'

// Every route of the contract (§3), as `METHOD path` under PUBLIC_URL.
const CONTRACT_ROUTES = [
  'GET /auth/login',
  'GET /oauth2/callback',
  'GET /auth/profiles',
  'GET /session',
  'GET /session/accounts',
  'PUT /session/active-account',
  'GET /session/devices',
  'POST /auth/logout',
  'GET /api/epcc/{*}',
  'POST /api/epcc/{*}',
  'PUT /api/epcc/{*}',
  'PATCH /api/epcc/{*}',
  'DELETE /api/epcc/{*}',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
]

interface OpenApiDoc {
  openapi: string
  servers: Array<{ url: string }>
  paths: Record<string, Record<string, { security?: unknown[]; responses?: Record<string, unknown> }>>
  components: { securitySchemes: Record<string, { in: string; name: string }> }
}

t.test(
  'GET /openapi.json: a valid OpenAPI 3.1 document of every route, generated from the route schemas',
  async (t) => {
    const stack = await startStack(t, { basePath: '/bff' })
    const response = await fetch(`${stack.bff}/openapi.json`)
    t.equal(response.status, 200)
    const doc = (await response.json()) as OpenApiDoc

    const validator = new Validator()
    const result = await validator.validate(doc as unknown as Parameters<Validator['validate']>[0])
    t.ok(result.valid, JSON.stringify(result.errors ?? []).slice(0, 500))
    t.equal(doc.openapi, '3.1.0')
    t.same(doc.servers, [{ url: stack.publicUrl }])

    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    )
    t.same(documented.sort(), [...CONTRACT_ROUTES].sort(), 'exactly the contract routes')
    t.same(doc.components.securitySchemes.sessionCookie, {
      type: 'apiKey',
      in: 'cookie',
      name: 'epcc-bff',
      description: 'The HttpOnly session cookie; the browser sends it, scripts never see it',
    })
    t.equal(doc.components.securitySchemes.csrfHeader?.name, 'X-CSRF')
    for (const route of ['/session', '/session/accounts', '/auth/profiles']) {
      t.same(doc.paths[route]?.get?.security, [{ sessionCookie: [], csrfHeader: [] }], `${route} names both`)
    }
    t.ok(doc.paths['/session/active-account']?.put?.responses?.['404'], 'unknown_account is documented')

    // Each documented route answers (nothing documented that is not served): anything but a 404 "No such route".
    for (const entry of CONTRACT_ROUTES) {
      const [method = 'GET', path = ''] = entry.split(' ')
      const url = `${stack.bff}${path.replace('{*}', 'v2/carts')}`
      const answer = await fetch(url, { method, redirect: 'manual', headers: { 'x-csrf': '1' } })
      const body = answer.status === 404 ? await answer.text() : ''
      t.notMatch(body, /No such route/, `${entry} is served`)
    }
  },
)

t.test("the browser client's types agree with the OpenAPI description", async (t) => {
  const stack = await startStack(t)
  const doc = await (await fetch(`${stack.bff}/openapi.json`)).json()
  const dir = join(import.meta.dirname, '.generated')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'openapi.ts'), astToString(await openapiTS(doc)))
  // Mutual assignability: the client's shape is the documented shape, field for field.
  writeFileSync(
    join(dir, 'agree.ts'),
    `import type { paths } from './openapi.js'
import type { AccountsPage, Devices, Profiles, Session } from '../../client/index.js'
type Json<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: { 200: { content: { 'application/json': infer B } } }
}
  ? B
  : never
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
export const session: Same<Json<'/session', 'get'>, Session> = true
export const switched: Same<Json<'/session/active-account', 'put'>, Session> = true
export const accounts: Same<Json<'/session/accounts', 'get'>, AccountsPage> = true
export const profiles: Same<Json<'/auth/profiles', 'get'>, Profiles> = true
export const devices: Same<Json<'/session/devices', 'get'>, Devices> = true
`,
  )
  const program = ts.createProgram([join(dir, 'agree.ts')], {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    skipLibCheck: true,
    types: [],
  })
  const diagnostics = ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  t.same(diagnostics, [], 'no type disagreement')
})

t.test('the browser client against a real BFF', async (t) => {
  const stack = await startStack(t)
  const { browser, member } = await signedIn(stack, 3)
  // The client runs in a browser; here it gets a fetch that carries this test browser's cookie jar.
  const bff = createBffClient(stack.bff, { fetch: (input, init) => browser.fetch(String(input), init) })

  const session = await bff.getSession()
  t.equal(session.member.id, member.id)
  const page = await bff.listAccounts({ offset: 1, limit: 2 })
  t.same(
    page.data.map((a) => a.id),
    member.accounts.slice(1, 3).map((a) => a.id),
  )
  t.equal((await bff.switchAccount(member.accounts[2]?.id ?? '')).activeAccount.id, member.accounts[2]?.id)
  t.same(
    (await bff.profiles()).data,
    stack.sim.profiles.map((p) => ({ id: p.id, name: p.name })),
  )
  const carts = await bff.epccFetch('/v2/carts')
  t.equal(carts.status, 200, "EPCC's own answer comes back")

  const unknown = await bff.switchAccount('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e)
  t.type(unknown, BffError)
  t.equal((unknown as BffError).code, 'unknown_account')
  const outside = await bff.epccFetch('/v2/settings').catch((e: unknown) => e)
  t.equal((outside as BffError).code, 'not_found')

  const listed = await bff.devices()
  t.same(
    listed.data.map((d) => d.current),
    [true],
    'devices(): this browser',
  )
  // The member signs in from a second browser, and signs out everywhere from there.
  const elsewhere = new Browser()
  await login(stack, elsewhere, member.id)
  const other = createBffClient(stack.bff, { fetch: (input, init) => elsewhere.fetch(String(input), init) })
  t.same(
    (await other.devices()).data.map((d) => d.current),
    [false, true],
  )
  await other.logout({ everywhere: true })
  const after = await bff.getSession().catch((e: unknown) => e)
  t.type(after, BffError)
  t.equal((after as BffError).code, 'unauthenticated')
  t.ok((after as BffError).signInAgain)
  t.equal(
    bff.loginUrl({ profile: 'p1', returnTo: '/orders' }),
    `${stack.bff}/auth/login?profile=p1&returnTo=%2Forders`,
  )
})

t.test('the administration routes are documented when ADMIN_TOKEN is set', async (t) => {
  const stack = await startStack(t, { env: { ADMIN_TOKEN: 'operator-token-0123456789abcdef-0123456789' } })
  const doc = (await (await fetch(`${stack.bff}/openapi.json`)).json()) as OpenApiDoc
  const path = doc.paths['/admin/members/{memberId}/sessions']
  t.same(path?.get?.security, [{ adminToken: [] }])
  t.same(path?.delete?.security, [{ adminToken: [] }])
  t.ok(path?.delete?.responses?.['401'], 'unauthorized is documented')
  t.same(Object.keys(path ?? {}).sort(), ['delete', 'get'], 'the preflight refusal is not documented')
  const result = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0])
  t.ok(result.valid, JSON.stringify(result.errors ?? []).slice(0, 500))
})
