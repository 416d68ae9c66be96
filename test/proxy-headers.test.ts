import { request as httpRequest } from 'node:http'
import t from 'tap'
import { mergedVary, privateCacheControl } from '../src/proxy.js'
import { Browser } from './support/browser.js'
import { answerUnder, mitmStack } from './support/epcc-mitm.js'
import { api, signedIn } from './support/flows.js'
import { API, FRONTEND, inEachDeployment, type Stack, secretsSeen, startStack } from './support/stack.js'

/** What reached EPCC, other than the BFF's own token calls. */
const proxied = (stack: Stack) => stack.sim.log.filter((r) => !r.path.startsWith('/oauth/'))

/** The headers the official SDKs send, as their own code names them (see docs/elastic-path-sdks.md). */
const SDK_HEADERS = [
  'authorization',
  'content-type',
  'x-csrf',
  'ep-channel',
  'ep-context-tag',
  'ep-geolocation',
  'ep-pricebook-ids-for-price-segmentation-preview',
  'ep-pricebook-ids-of-available-prices-to-show',
  'ep-inventories-multi-location',
  'ep-account-management-authentication-token',
  'x-moltin-currency',
  'x-moltin-language',
  'x-moltin-customer-token',
  'x-moltin-sdk-language',
  'x-moltin-sdk-version',
  'x-moltin-application',
  'x-moltin-auth-store',
]

t.test('proxy headers', async (t) => {
  const stack = await startStack(t)
  const seen = new Set<string>()
  t.beforeEach(() => {
    for (const secret of secretsSeen(stack.sim)) seen.add(secret)
    stack.sim.clearLog()
  })

  t.test('selectors reach EPCC unchanged; the browser credentials never do', async (t) => {
    const { browser } = await signedIn(stack, 1)
    stack.sim.clearLog()
    const response = await api(stack, browser, '/api/epcc/catalog/products', {
      headers: {
        'ep-channel': 'mobile',
        'ep-context-tag': 'black-friday',
        'x-moltin-currency': 'EUR',
        'x-moltin-language': 'fr',
        'if-none-match': '"abc"',
        authorization: 'Bearer placeholder',
        'x-moltin-customer-token': 'a-customer-token',
        'x-moltin-auth-store': 'another-store',
        'ep-account-management-authentication-token': 'forged',
        'x-original-url': '/oauth/access_token',
        'x-http-method-override': 'DELETE',
      },
    })
    t.equal(response.status, 200)
    const [call] = proxied(stack)
    t.equal(call?.headers['ep-channel'], 'mobile')
    t.equal(call?.headers['ep-context-tag'], 'black-friday')
    t.equal(call?.headers['x-moltin-currency'], 'EUR')
    t.equal(call?.headers['x-moltin-language'], 'fr')
    t.equal(call?.headers['if-none-match'], '"abc"')
    t.match(call?.headers.authorization, /^Bearer [0-9a-f]{40}$/, "the BFF's store token")
    t.not(call?.headers['ep-account-management-authentication-token'], 'forged')
    t.notOk(call?.headers['x-moltin-customer-token'])
    t.notOk(call?.headers['x-moltin-auth-store'])
    t.notOk(call?.headers['x-original-url'], 'no path override')
    t.notOk(call?.headers['x-http-method-override'], 'no method override')
  })

  t.test('a cart created with X-Moltin-Currency carries that currency at EPCC', async (t) => {
    const { browser } = await signedIn(stack, 1)
    const created = await api(stack, browser, '/api/epcc/v2/carts', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-moltin-currency': 'EUR' },
      body: JSON.stringify({ data: { name: 'Euro cart' } }),
    })
    t.equal(created.status, 200)
    const cart = (await created.json()) as {
      data: { id: string; meta: { display_price: { with_tax: { currency: string } } } }
    }
    t.equal(cart.data.meta.display_price.with_tax.currency, 'EUR')
    const added = await api(stack, browser, `/api/epcc/v2/carts/${cart.data.id}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-moltin-currency': 'EUR' },
      body: JSON.stringify({ data: { type: 'cart_item', sku: 'MUG-001', quantity: 2 } }),
    })
    t.equal(added.status, 201)
    const items = (await added.json()) as { data: Array<{ value: { amount: number; currency: string } }> }
    t.same(items.data[0]?.value, { amount: 2400, currency: 'EUR', formatted: 'EUR 24.00' })
  })

  t.test('Expect: 100-continue is answered by the BFF and never forwarded', async (t) => {
    const { browser } = await signedIn(stack, 1)
    stack.sim.clearLog()
    const cookie = `epcc-bff=${browser.cookie(new URL(stack.bff).host, 'epcc-bff')}`
    const body = JSON.stringify({ data: { name: 'curl cart', description: 'x'.repeat(2000) } })
    const base = new URL(stack.bff)
    // As curl sends a larger body: headers first, the body only after `100 Continue`.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        host: base.hostname,
        port: base.port,
        path: '/api/epcc/v2/carts',
        method: 'POST',
        headers: {
          ...API,
          cookie,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          expect: '100-continue',
        },
      })
      req.on('continue', () => req.end(body))
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
    })
    t.equal(status, 200)
    const [call, ...more] = proxied(stack)
    t.equal(more.length, 0)
    t.equal(call?.method, 'POST')
    t.notOk(call?.headers.expect, 'no Expect at EPCC')
    t.equal(
      (call?.body as { data?: { name?: string } } | undefined)?.data?.name,
      'curl cart',
      'the body whole',
    )
  })

  t.test("EPCC's own CORS headers never reach the browser; the BFF's do", async (t) => {
    stack.sim.quirks.accessControlHeaders = true
    t.teardown(() => {
      stack.sim.quirks.accessControlHeaders = false
    })
    const foreign = await new Browser().fetch(`${stack.bff}/api/epcc/catalog/products`, {
      headers: { ...API },
    })
    t.equal(foreign.status, 200)
    t.equal(foreign.headers.get('access-control-allow-origin'), null, 'no origin, no CORS at all')
    t.equal(foreign.headers.get('access-control-expose-headers'), null)
    const fromShop = await new Browser().fetch(`${stack.bff}/api/epcc/catalog/products`, {
      headers: { ...API, origin: FRONTEND },
    })
    t.equal(fromShop.status, 200)
    t.equal(fromShop.headers.get('access-control-allow-origin'), FRONTEND)
    t.equal(fromShop.headers.get('access-control-allow-credentials'), 'true')
    t.equal(fromShop.headers.get('access-control-allow-headers'), null)
    t.equal(
      fromShop.headers.get('access-control-expose-headers'),
      'ETag, Retry-After',
      "the BFF's list, not EPCC's *",
    )
  })

  t.test('a preflight from the storefront admits every header the SDKs send', async (t) => {
    const preflight = await fetch(`${stack.bff}/api/epcc/v2/carts`, {
      method: 'OPTIONS',
      headers: {
        origin: FRONTEND,
        'access-control-request-method': 'POST',
        'access-control-request-headers': SDK_HEADERS.join(','),
      },
    })
    t.equal(preflight.status, 204)
    t.equal(preflight.headers.get('access-control-allow-origin'), FRONTEND)
    const allowed = new Set(
      (preflight.headers.get('access-control-allow-headers') ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase()),
    )
    for (const header of SDK_HEADERS) t.ok(allowed.has(header), header)
    t.equal(proxied(stack).length, 0, 'a preflight reaches nothing')
  })

  t.test('a preflight from another origin admits nothing', async (t) => {
    const preflight = await fetch(`${stack.bff}/api/epcc/v2/carts`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,x-csrf',
      },
    })
    t.equal(preflight.headers.get('access-control-allow-origin'), null)
    t.equal(preflight.headers.get('access-control-allow-credentials'), null)
  })

  t.test('hardened paths: 404 not_found and nothing sent', async (t) => {
    const base = new URL(stack.bff)
    const paths = [
      '/api/epcc/v2/carts;x=1',
      '/api/epcc/v2/carts/abc;jsessionid=1/items',
      '/api/epcc/v2/carts/%253b',
      '/api/epcc/v2/carts/%252e%252e/%252e%252e/oauth/access_token',
      '/api/epcc/v2/carts\\..\\..\\oauth\\access_token',
      '/api/epcc/v2/account-members/Tokens',
      '/api/epcc/v2/account-members/TOKENS',
      '/api/epcc/v2/account-members/%54okens',
    ]
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = httpRequest(
            { host: base.hostname, port: base.port, path, method, headers: { ...API } },
            (res) => {
              const chunks: Buffer[] = []
              res.on('data', (c: Buffer) => chunks.push(c))
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
              )
            },
          )
          req.on('error', reject)
          req.end()
        })
        t.equal(status, 404, `${method} ${path}`)
        t.equal((JSON.parse(text) as { error: string }).error, 'not_found', `${method} ${path}`)
      }
    }
    t.same(proxied(stack), [], 'nothing reached EPCC')
  })

  t.test('no secret in any log line', async (t) => {
    t.ok(seen.size > 0)
    for (const secret of seen) t.notOk(stack.logs.text.includes(secret), 'log line with a token')
  })
})

t.test("EPCC's answer cannot relax the BFF origin's security headers or clear its state", async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const { stack, rules } = await mitmStack(t, { deployment })
    // What a compromised or misconfigured EPCC edge could answer: HTML under looser policies of its own, and
    // headers that act on the whole origin the BFF serves (its cookies, its HSTS, its alternative services).
    rules.push(
      answerUnder(
        '/v2/carts/hostile',
        {
          'content-type': 'text/html',
          'content-security-policy': "default-src *; script-src 'unsafe-inline'",
          'content-security-policy-report-only': 'default-src *',
          'x-frame-options': 'ALLOWALL',
          'x-content-type-options': 'none',
          'cross-origin-resource-policy': 'cross-origin',
          'cross-origin-opener-policy': 'unsafe-none',
          'referrer-policy': 'unsafe-url',
          'strict-transport-security': 'max-age=63072000; includeSubDomains; preload',
          'clear-site-data': '"cookies", "storage"',
          'alt-svc': 'h3=":443"; ma=86400',
          // Network Error Logging: reports of every request to the origin, URL included, to EPCC's collector.
          nel: '{"report_to":"epcc","max_age":31536000,"include_subdomains":true,"success_fraction":1.0}',
          'report-to':
            '{"group":"epcc","max_age":31536000,"endpoints":[{"url":"https://collector.example/r"}]}',
          'reporting-endpoints': 'default="https://collector.example/r"',
          etag: '"kept"',
        },
        '<script>alert(document.domain)</script>',
      ),
    )
    const { browser } = await signedIn(stack, 1)
    const response = await api(stack, browser, '/api/epcc/v2/carts/hostile')
    t.equal(response.status, 200)
    const own = stack.app.securityHeaders
    for (const name of [
      'content-security-policy',
      'x-frame-options',
      'x-content-type-options',
      'cross-origin-resource-policy',
      'cross-origin-opener-policy',
      'referrer-policy',
    ]) {
      t.equal(response.headers.get(name), own[name], `${name}: the BFF's`)
    }
    for (const name of [
      'content-security-policy-report-only',
      'strict-transport-security',
      'clear-site-data',
      'alt-svc',
      'nel',
      'report-to',
      'reporting-endpoints',
    ]) {
      // Behind TLS the BFF sends its own HSTS; EPCC's never comes back.
      t.equal(response.headers.get(name), own[name] ?? null, `${name}: not EPCC's`)
    }
    t.equal(response.headers.get('etag'), '"kept"', "EPCC's other headers still come back")
    t.equal((await api(stack, browser, '/session')).status, 200, 'still signed in')
  }),
)

t.test("EPCC's Vary adds to the BFF's Vary: Origin, never replaces it", async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const { stack, rules } = await mitmStack(t, { deployment })
    rules.push(
      answerUnder(
        '/v2/carts/varied',
        { 'content-type': 'application/json', vary: 'Accept-Encoding' },
        '{"data":{}}',
      ),
    )
    const { browser } = await signedIn(stack, 1)
    const response = await api(stack, browser, '/api/epcc/v2/carts/varied', { headers: { origin: FRONTEND } })
    t.equal(response.status, 200)
    t.equal(response.headers.get('access-control-allow-origin'), FRONTEND)
    // A cache in front of the BFF keys this answer, which allows FRONTEND only, by the Origin it was asked from.
    const vary = (response.headers.get('vary') ?? '').split(',').map((name) => name.trim().toLowerCase())
    t.same(
      vary.sort(),
      ['accept-encoding', 'cookie', 'origin'],
      "Origin and Cookie (the BFF's: a member's answer) and Accept-Encoding (EPCC)",
    )
    t.equal(
      mergedVary('Origin', ['accept-encoding, ORIGIN', 'X-Moltin-Currency']),
      'Origin, accept-encoding, X-Moltin-Currency',
    )
    t.equal(mergedVary('Origin', '*'), '*')
    t.equal(mergedVary(undefined, undefined), undefined)
  }),
)

t.test("an answer to a member's token is private, whatever caching EPCC allowed", async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const { stack, rules } = await mitmStack(t, { deployment })
    rules.push(
      answerUnder(
        '/v2/carts/cacheable',
        {
          'content-type': 'application/json',
          'cache-control': 'public, max-age=600, s-maxage=600',
          vary: 'Accept-Encoding',
        },
        '{"data":{"id":"a-members-cart"}}',
      ),
    )
    const { browser } = await signedIn(stack, 1)
    const member = await api(stack, browser, '/api/epcc/v2/carts/cacheable', {
      headers: { origin: FRONTEND },
    })
    t.equal(member.status, 200)
    // A CDN in front of the BFF keys by URL (and Origin), never by cookie: it must not keep this answer.
    t.equal(member.headers.get('cache-control'), 'private, max-age=600', 'private; no public, no s-maxage')
    t.match(member.headers.get('vary'), /\bCookie\b/i, "the browser's cache keeps it for this cookie only")
    // Without a session, the store's public answer keeps EPCC's caching.
    const anonymous = await api(stack, new Browser(), '/api/epcc/v2/carts/cacheable')
    t.equal(anonymous.headers.get('cache-control'), 'public, max-age=600, s-maxage=600')
    t.equal(privateCacheControl(undefined), 'private')
    t.equal(privateCacheControl(['no-store', 'private="x", no-cache']), 'private, no-store, no-cache')
  }),
)
