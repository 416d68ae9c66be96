import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { SimRequest } from '../dev/epcc-sim/index.js'
import { PROXY_BODY_LIMIT } from '../routes/proxy.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, signedIn, switchAccount } from './support/flows.js'
import { API, type Stack, secretsSeen, startStack } from './support/stack.js'

const NO_ACCOUNT = '00000000-0000-4000-8000-000000000000'

/** The claims of the account token EPCC received (read, not verified: the simulator signed it). */
function accountClaims(request: SimRequest | undefined): { sub: string; scope: string } | undefined {
  const token = request?.headers['ep-account-management-authentication-token']
  const payload = token?.split('.')[1]
  return payload ? JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) : undefined
}

/** The credential-bearing headers EPCC received: the only ones a proxy may choose. */
const credentialHeaders = (request: SimRequest | undefined) =>
  Object.keys(request?.headers ?? {})
    .filter((h) => /^(authorization|cookie|ep-account-|x-moltin-customer-)/.test(h))
    .sort()

/** What reached EPCC, other than the BFF's own token calls. */
const proxied = (stack: Stack) => stack.sim.log.filter((r) => !r.path.startsWith('/oauth/'))
/** The same, as short lines for assertions. */
const calls = (stack: Stack) => proxied(stack).map((r) => `${r.method} ${r.path}`)

interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  text: string
}

/** One request with the path written verbatim: no client normalises its dot segments or slashes. */
function raw(
  stack: Stack,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const base = new URL(stack.bff)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: opts.method ?? 'GET',
        headers: { ...API, ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

t.test('the proxy', async (t) => {
  const stack = await startStack(t)
  t.beforeEach(() => stack.sim.clearLog())

  t.test('anonymous: EPCC gets the implicit bearer and no account token', async (t) => {
    const response = await api(stack, new Browser(), '/api/epcc/catalog/products')
    t.equal(response.status, 200)
    t.equal(((await response.json()) as { data: unknown[] }).data.length, 3)
    const [call, ...more] = proxied(stack)
    t.equal(more.length, 0, 'one call reached EPCC')
    t.equal(call?.path, '/catalog/products')
    t.same(credentialHeaders(call), ['authorization'])
    t.match(call?.headers.authorization, /^Bearer [0-9a-f]{40}$/)
    t.equal(call?.status, 200, 'EPCC accepted the implicit token')
  })

  t.test("signed in: the implicit bearer, the account's token, the selectors", async (t) => {
    const { browser, member } = await signedIn(stack, 2)
    stack.sim.clearLog()
    const cookie = `epcc-bff=${browser.cookie(cookieHost(stack), 'epcc-bff')}; tracker=abc`
    const response = await api(stack, browser, '/api/epcc/v2/accounts', {
      headers: {
        authorization: 'Bearer the-browsers-own',
        'ep-account-management-authentication-token': 'forged',
        'ep-channel': 'mobile',
        'x-moltin-customer-token': 'customer',
        'x-moltin-currency': 'EUR',
        cookie,
        'accept-language': 'de-CH',
        'x-forwarded-for': '203.0.113.9',
      },
    })
    t.equal(response.status, 200)
    t.same(
      ((await response.json()) as { data: Array<{ id: string }> }).data.map((a) => a.id),
      [member.accounts[0]?.id],
      'EPCC answered for the first account',
    )
    const [call, ...more] = proxied(stack)
    t.equal(more.length, 0)
    t.same(credentialHeaders(call), ['authorization', 'ep-account-management-authentication-token'])
    t.match(call?.headers.authorization, /^Bearer [0-9a-f]{40}$/)
    t.same(
      { sub: accountClaims(call)?.sub, scope: accountClaims(call)?.scope },
      { sub: member.id, scope: member.accounts[0]?.id },
    )
    t.equal(call?.headers['accept-language'], 'de-CH', 'ordinary headers pass')
    t.equal(call?.headers['ep-channel'], 'mobile', 'the channel selector passes')
    t.equal(call?.headers['x-moltin-currency'], 'EUR', 'the currency selector passes')
    for (const header of ['x-csrf', 'origin', 'x-forwarded-for']) t.notOk(call?.headers[header], header)
  })

  t.test("switch account, then proxy: the new account's token is used", async (t) => {
    const { browser, member } = await signedIn(stack, 3)
    const target = member.accounts[2]
    const switched = await switchAccount(stack, browser, target?.id)
    t.equal(switched.status, 200)
    stack.sim.clearLog()
    const response = await api(stack, browser, `/api/epcc/v2/accounts/${target?.id}`)
    t.equal(response.status, 200)
    t.equal(((await response.json()) as { data: { id: string } }).data.id, target?.id)
    t.equal(accountClaims(proxied(stack)[0])?.scope, target?.id)
    const old = await api(stack, browser, `/api/epcc/v2/accounts/${member.accounts[0]?.id}`)
    t.equal(old.status, 404, "the first account's data is out of reach now")
  })

  t.test('JSON bodies are forwarded intact, the query is kept', async (t) => {
    const { browser } = await signedIn(stack, 1)
    stack.sim.clearLog()
    const sent = { data: { name: 'Wedding list', description: 'Grüße ✓ "quoted" \\ & <tags>' } }
    const created = await api(stack, browser, '/api/epcc/v2/carts', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sent),
    })
    t.equal(created.status, 200)
    const cart = ((await created.json()) as { data: { id: string; name: string } }).data
    t.equal(cart.name, 'Wedding list')
    const [call] = proxied(stack)
    t.same(call?.body, sent)
    t.equal(call?.headers['content-type'], 'application/json')

    const item = await api(stack, browser, `/api/epcc/v2/carts/${cart.id}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: { type: 'cart_item', sku: 'MUG-001', quantity: 2 } }),
    })
    t.equal(item.status, 201)

    const listed = await api(
      stack,
      browser,
      '/api/epcc/catalog/products?page[limit]=2&page[offset]=1&q=a%20b',
    )
    t.equal(listed.status, 200)
    t.equal(((await listed.json()) as { data: unknown[] }).data.length, 2)
    t.same(proxied(stack).at(-1)?.query, { 'page[limit]': '2', 'page[offset]': '1', q: 'a b' })
  })

  t.test('a body at the limit is forwarded whole', async (t) => {
    const { browser } = await signedIn(stack, 1)
    stack.sim.clearLog()
    const envelope = JSON.stringify({ data: { name: 'Big', description: '' } })
    const description = 'x'.repeat(PROXY_BODY_LIMIT - envelope.length)
    const body = JSON.stringify({ data: { name: 'Big', description } })
    t.equal(Buffer.byteLength(body), PROXY_BODY_LIMIT)
    const response = await api(stack, browser, '/api/epcc/v2/carts', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    t.equal(response.status, 200)
    const arrived = (proxied(stack)[0]?.body as { data?: { description?: string } } | undefined)?.data
      ?.description
    t.equal(arrived?.length, description.length)
    t.ok(arrived === description, 'the body arrived whole')
  })

  t.test('a body over the limit: 413, and nothing reaches EPCC', async (t) => {
    const { browser } = await signedIn(stack, 1)
    stack.sim.clearLog()
    const tooBig = JSON.stringify({ data: { name: 'x'.repeat(PROXY_BODY_LIMIT) } })
    const declared = await api(stack, browser, '/api/epcc/v2/carts', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: tooBig,
    })
    t.equal(declared.status, 413)
    t.equal(((await declared.json()) as { error: string }).error, 'payload_too_large')

    // Without a Content-Length the size is only known while it streams.
    const chunks = [Buffer.from(tooBig.slice(0, 600_000)), Buffer.from(tooBig.slice(600_000))]
    const chunked = await api(stack, browser, '/api/epcc/v2/carts', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift()
          if (next) controller.enqueue(next)
          else controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    t.equal(chunked.status, 413)
    t.equal(((await chunked.json()) as { error: string }).error, 'payload_too_large')
    await sleep(200) // a request cut off mid-body would show in EPCC's log by now
    t.same(calls(stack), [], 'no request reached EPCC, not even a part of one')
  })

  t.test("upstream status and body come back unchanged, EPCC's errors included", async (t) => {
    const { browser } = await signedIn(stack, 1)
    const missing = await api(stack, browser, `/api/epcc/v2/orders/${NO_ACCOUNT}`)
    t.equal(missing.status, 404)
    t.equal(missing.headers.get('content-type'), 'application/json')
    t.equal(
      await missing.text(),
      JSON.stringify({ errors: [{ status: 404, title: 'Not Found', detail: 'order not found' }] }),
    )
    const refused = await api(stack, new Browser(), '/api/epcc/v2/orders')
    t.equal(refused.status, 401, "EPCC's 401 for a missing account token is passed back")
    t.match(await refused.json(), { errors: [{ status: 401 }] })
    const bad = await api(stack, browser, '/api/epcc/catalog/products?page[limit]=500')
    t.equal(bad.status, 400)
    t.match(await bad.json(), { errors: [{ status: 400, source: 'page[limit]' }] })
  })

  t.test("EPCC's Set-Cookie never reaches the browser", async (t) => {
    for (const browser of [new Browser(), (await signedIn(stack, 1)).browser]) {
      const response = await api(stack, browser, '/api/epcc/v2/carts/set-cookie-test')
      t.equal(response.status, 200)
      t.same(await response.json(), { data: { ok: true } })
      t.notMatch(response.headers.getSetCookie().join('\n'), /epcc_sim_tracker/)
      t.equal(browser.cookie(cookieHost(stack), 'epcc_sim_tracker'), undefined)
    }
  })

  t.test('an upstream redirect is passed back, never followed', async (t) => {
    const response = await api(stack, new Browser(), '/api/epcc/v2/carts/redirect-test')
    t.equal(response.status, 302)
    t.equal(response.headers.get('location'), 'https://evil.example/steal')
    t.same(
      proxied(stack).map((r) => r.path),
      ['/v2/carts/redirect-test'],
      'one request, to EPCC only',
    )
  })

  t.test('without X-CSRF: 1 → 403 csrf, nothing forwarded', async (t) => {
    const { browser } = await signedIn(stack, 1)
    stack.sim.clearLog()
    for (const headers of [{}, { 'x-csrf': '0' }] as Array<Record<string, string>>) {
      const response = await browser.fetch(`${stack.bff}/api/epcc/v2/carts`, { method: 'POST', headers })
      t.equal(response.status, 403)
      t.equal(((await response.json()) as { error: string }).error, 'csrf')
    }
    const foreign = await api(stack, browser, '/api/epcc/v2/carts', {
      headers: { origin: 'https://evil.example' },
    })
    t.equal(foreign.status, 403)
    t.same(calls(stack), [])
  })

  t.test(
    'a cookie that names no live session: 401 session_expired, cookie expired, nothing forwarded',
    async (t) => {
      const { browser } = await signedIn(stack, 1)
      const loggedOut = browser.cookie(cookieHost(stack), 'epcc-bff') ?? ''
      t.equal((await api(stack, browser, '/auth/logout', { method: 'POST' })).status, 204)
      stack.sim.clearLog()
      const stale: Array<[string, string]> = [
        ['logged out', loggedOut],
        ['garbage', 'garbage'],
        ['forged signature', `${loggedOut.split('.')[0]}.AAAA`],
      ]
      for (const [what, value] of stale) {
        const stale = new Browser()
        stale.setCookie(cookieHost(stack), 'epcc-bff', value)
        const response = await api(stack, stale, '/api/epcc/catalog/products')
        t.equal(response.status, 401, what)
        t.same(await response.json(), {
          error: 'session_expired',
          message: 'The session has expired; sign in again.',
        })
        t.match(response.headers.getSetCookie().join('\n'), /^epcc-bff=;.*Expires=Thu, 01 Jan 1970/m, what)
        t.equal(stale.cookie(cookieHost(stack), 'epcc-bff'), undefined)
      }
      t.same(calls(stack), [], 'never forwarded, not even anonymously')
    },
  )

  t.test('path escapes and token endpoints: 404 not_found, no outbound request at all', async (t) => {
    const { browser } = await signedIn(stack, 1)
    const cookie = `epcc-bff=${browser.cookie(cookieHost(stack), 'epcc-bff')}`
    const escapes = [
      '/api/epcc/v2/carts/..%2f..%2fv2%2fsettings%2faccount-authentication',
      '/api/epcc/v2/carts/..%2F..%2Foauth%2Faccess_token',
      '/api/epcc/v2/carts/%2e%2e/%2e%2e/v2/settings/account-authentication',
      '/api/epcc/v2/carts/%2E%2E/%2E%2E/oauth/access_token',
      '/api/epcc/v2/carts/../../oauth/access_token',
      '/api/epcc/v2/carts/.%2e/.%2e/v2/settings/account-authentication',
      '/api/epcc/../v2/settings/account-authentication',
      '/api/epcc//evil.example/v2/carts',
      '/api/epcc/v2/carts//evil.example',
      '/api/epcc/https://evil.example/x',
      '/api/epcc/http:%2f%2fevil.example/v2/carts',
      '/api/epcc/@evil.example/v2/carts',
      '/api/epcc/v2/carts\\..\\..\\oauth\\access_token',
      '/api/epcc/\\\\evil.example/v2/carts',
      '/api/epcc/v2/carts/%5c..%5c..%5coauth%5caccess_token',
      '/api/epcc/v2/cartsX',
      '/api/epcc/v2/catalogs/products',
      '/api/epcc/V2/carts',
      '/api/epcc/v2/settings/account-authentication',
      '/api/epcc/oauth/access_token',
      '/api/epcc/v2/account-members/tokens',
      '/api/epcc/v2/account-members/%74okens',
      '/api/epcc/v2/account-members/x/../tokens',
      '/api/epcc/v2/carts/%00',
    ]
    stack.sim.clearLog()
    for (const path of escapes) {
      for (const method of ['GET', 'POST']) {
        const response = await raw(stack, path, { method, headers: { cookie } })
        t.equal(response.status, 404, `${method} ${path}`)
        t.same(JSON.parse(response.text), { error: 'not_found', message: 'No such route.' }, path)
      }
    }
    t.same(
      stack.sim.log.map((r) => `${r.method} ${r.path}`),
      [],
      'EPCC saw nothing, not even a token request',
    )
  })

  t.test('a segment that only looks like a host stays on the EPCC host', async (t) => {
    const response = await raw(stack, '/api/epcc/v2/carts/@evil.example')
    t.equal(response.status, 200)
    t.same(
      proxied(stack).map((r) => r.path),
      ['/v2/carts/@evil.example'],
    )
  })

  t.test('no token reaches the log', async (t) => {
    const { browser } = await signedIn(stack, 1)
    t.equal((await api(stack, browser, '/api/epcc/v2/orders')).status, 200)
    const secrets = secretsSeen(stack.sim)
    t.ok(secrets.length > 0)
    for (const secret of secrets) t.notOk(stack.logs.text.includes(secret), 'log line with a token')
  })
})

t.test('EPCC not answering within EPCC_TIMEOUT_MS: 504 upstream_unavailable', async (t) => {
  const stack = await startStack(t)
  stack.sim.fault({ method: 'GET', path: '/v2/carts/slow', kind: 'hang' })
  const started = Date.now()
  const response = await api(stack, new Browser(), '/api/epcc/v2/carts/slow')
  t.equal(response.status, 504)
  t.equal(((await response.json()) as { error: string }).error, 'upstream_unavailable')
  t.ok(Date.now() - started < 3000, 'within the 1.5 s budget, give or take')
})

t.test('an implicit token EPCC no longer accepts is renewed once and the call retried once', async (t) => {
  const stack = await startStack(t)
  const { browser } = await signedIn(stack, 1)
  t.equal((await api(stack, browser, '/api/epcc/v2/carts')).status, 200)
  // EPCC's clock runs past the implicit token's hour; the BFF still believes its token valid.
  stack.sim.clock.advance(3601)
  stack.sim.clearLog()
  for (const browserOrNot of [browser, new Browser()]) {
    const response = await api(stack, browserOrNot, '/api/epcc/catalog/products')
    t.equal(response.status, 200)
  }
  t.equal(stack.sim.calls('POST', '/oauth/access_token').length, 1, 'one new implicit token')
  t.same(
    stack.sim.calls('GET', '/catalog/products').map((r) => r.status),
    [401, 200, 200],
    'the refused call was retried once; the next one used the new token',
  )
})

t.test(
  'a POST refused for its implicit token is not sent twice, and the next call has a new token',
  async (t) => {
    const stack = await startStack(t)
    const browser = new Browser()
    t.equal((await api(stack, browser, '/api/epcc/catalog/products')).status, 200)
    stack.sim.clock.advance(3601)
    stack.sim.clearLog()
    const post = () =>
      api(stack, browser, '/api/epcc/v2/carts', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: { name: 'Cart' } }),
      })
    const refused = await post()
    t.equal(refused.status, 401, "EPCC's answer, passed back")
    t.equal(stack.sim.calls('POST', '/v2/carts').length, 1, 'sent once: a POST is not repeated')
    t.equal((await post()).status, 200, 'the next one goes with a new implicit token')
    t.equal(stack.sim.calls('POST', '/oauth/access_token').length, 1)
  },
)
