import { request as httpRequest } from 'node:http'
import t from 'tap'
import { resolveReturnTo } from '../src/return-to.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, login, signedIn, startLogin } from './support/flows.js'
import { proxyPathVariants, returnToVariants } from './support/generated.js'
import { FRONTEND, startStack } from './support/stack.js'

/** A request with the path written verbatim (fetch would normalise dot segments). */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base)
  // Only what cannot go on the wire as-is is escaped, as a browser would: non-ASCII and spaces.
  const wire = `${url.pathname.replace(/\/$/, '')}${path}`.replace(/[^\x21-\x7e]/g, (c) =>
    encodeURIComponent(c),
  )
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path: wire, headers }, (res) => {
      let body = ''
      res.on('data', (chunk) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('A-43: security headers on every kind of response', async (t) => {
  const stack = await startStack(t)
  const { browser } = await signedIn(stack, 1)
  const responses = [
    await fetch(`${stack.bff}/healthz`),
    await api(stack, browser, '/session'),
    await fetch(`${stack.bff}/session`, { headers: { 'x-csrf': '1' } }),
    await fetch(`${stack.bff}/nope`),
    await fetch(`${stack.bff}/auth/login`, { redirect: 'manual' }),
    await fetch(`${stack.bff}/oauth2/callback?state=x`, { redirect: 'manual' }),
  ]
  for (const response of responses) {
    const where = `${response.status} ${response.url}`
    t.equal(response.headers.get('x-content-type-options'), 'nosniff', where)
    t.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, where)
    t.equal(response.headers.get('referrer-policy'), 'no-referrer', where)
    t.equal(response.headers.get('x-frame-options'), 'DENY', where)
    t.equal(response.headers.get('x-powered-by'), null, where)
    t.equal(response.headers.get('cache-control'), 'no-store', where)
    t.equal(response.headers.get('strict-transport-security'), null, `${where}: no HSTS over http`)
  }
})

t.test('A-43: HSTS when PUBLIC_URL is https', async (t) => {
  const stack = await startStack(t, { env: { TRUST_PROXY: 'true' } })
  const https = await stack.replica({ PUBLIC_URL: stack.publicUrl.replace('http:', 'https:') })
  const response = await fetch(`${https.bff}/healthz`, { headers: { 'x-forwarded-proto': 'https' } })
  t.match(response.headers.get('strict-transport-security') ?? '', /max-age=31536000/)
})

t.test('A-24, A-41, A-42: login and callback are rate limited per client address', async (t) => {
  t.test('without TRUST_PROXY a spoofed X-Forwarded-For changes nothing', async (t) => {
    const stack = await startStack(t, { env: { RATE_LIMIT_PER_MINUTE: '3' } })
    for (let i = 0; i < 3; i++) {
      const ok = await fetch(`${stack.bff}/auth/login`, {
        redirect: 'manual',
        headers: { 'x-forwarded-for': `10.0.0.${i}` },
      })
      t.equal(ok.status, 302)
    }
    const limited = await fetch(`${stack.bff}/auth/login`, {
      redirect: 'manual',
      headers: { 'x-forwarded-for': '10.9.9.9' },
    })
    t.equal(limited.status, 429)
    t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After')
    t.equal(((await limited.json()) as { error: string }).error, 'rate_limited')
    const callback = await fetch(`${stack.bff}/oauth2/callback`, { redirect: 'manual' })
    t.equal(callback.status, 302, 'each route has its own budget')
  })

  t.test('behind a trusted proxy, the forwarded client address is the key', async (t) => {
    const stack = await startStack(t, { env: { RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '127.0.0.1' } })
    const from = (ip: string) =>
      fetch(`${stack.bff}/oauth2/callback`, { redirect: 'manual', headers: { 'x-forwarded-for': ip } })
    t.equal((await from('203.0.113.1')).status, 302)
    t.equal((await from('203.0.113.1')).status, 302)
    t.equal((await from('203.0.113.1')).status, 429)
    t.equal((await from('203.0.113.2')).status, 302, 'another client is not limited')
  })
})

t.test('A-33: a tampered, truncated or oversized cookie is no session, never a 500', async (t) => {
  const stack = await startStack(t)
  const { browser } = await signedIn(stack, 1)
  const host = cookieHost(stack)
  const cookie = browser.cookie(host, 'epcc-bff') ?? ''
  const flipped = `${cookie.slice(0, 5)}${cookie[5] === 'A' ? 'B' : 'A'}${cookie.slice(6)}`
  for (const value of [
    flipped,
    cookie.slice(0, 20),
    `${cookie}x`,
    'x'.repeat(5000),
    '%',
    '""',
    cookie.split('.')[0] ?? '',
  ]) {
    const attacker = new Browser()
    attacker.setCookie(host, 'epcc-bff', value)
    const response = await api(stack, attacker, '/session')
    t.equal(response.status, 401, value.slice(0, 24))
    const proxied = await api(stack, attacker, '/api/epcc/v2/carts')
    t.equal(proxied.status, 401, `proxy: ${value.slice(0, 24)}`)
  }
  t.equal((await api(stack, browser, '/session')).status, 200, 'the genuine session still works')
})

t.test('A-44: unknown methods and HEAD are refused without side effects', async (t) => {
  const stack = await startStack(t)
  const { browser } = await signedIn(stack, 1)
  for (const [method, path] of [
    ['TRACE', '/session'],
    ['DELETE', '/session'],
    ['POST', '/session'],
    ['PUT', '/auth/login'],
    ['GET', '/auth/logout'],
    ['HEAD', '/auth/login'],
    ['PATCH', '/session/active-account'],
  ] as const) {
    const response = await raw(stack.bff, method, path, { 'x-csrf': '1' })
    t.ok(response.status === 404 || response.status === 405, `${method} ${path} → ${response.status}`)
  }
  t.equal((await api(stack, browser, '/session')).status, 200, 'GET /auth/logout did not log out')
})

t.test('A-37: JSON bodies: pollution keys, oversize, wrong types', async (t) => {
  const stack = await startStack(t)
  const { browser, member } = await signedIn(stack, 2)
  const put = (body: string, type = 'application/json') =>
    api(stack, browser, '/session/active-account', { method: 'PUT', headers: { 'content-type': type }, body })
  t.equal((await put('{"__proto__":{"polluted":1},"accountId":"x"}')).status, 400)
  t.equal((await put('{"constructor":{"prototype":{"polluted":1}}}')).status, 400)
  t.equal(
    (await put(JSON.stringify({ accountId: member.accounts[1]?.id, pad: 'x'.repeat(4096) }))).status,
    413,
  )
  t.equal((await put('accountId=x', 'application/x-www-form-urlencoded')).status, 415)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
  t.equal((await api(stack, browser, '/session')).status, 200)
})

t.test('generated returnTo variants never leave the allowed origins', async (t) => {
  const rules = {
    frontendUrl: FRONTEND,
    frontendOrigin: FRONTEND,
    allowedOrigins: new Set([FRONTEND]),
  }
  const variants = returnToVariants(new URL(FRONTEND).host)
  t.ok(variants.length > 500, `${variants.length} variants`)
  const escaped = variants.filter((v) => new URL(resolveReturnTo(v, rules)).origin !== FRONTEND)
  t.same(escaped, [], 'every target stays on the storefront origin')

  // A sample end to end: the final Location after a real login.
  const stack = await startStack(t)
  const member = stack.sim.addMember({ name: 'Gen', email: 'gen@example.com', accounts: 1 })
  for (const variant of variants.filter((_, i) => i % 40 === 0)) {
    const result = await login(stack, new Browser(), member.id, `?returnTo=${encodeURIComponent(variant)}`)
    t.equal(result.response.status, 302, JSON.stringify(variant))
    t.equal(new URL(result.location).origin, FRONTEND, JSON.stringify(variant))
  }
})

t.test('generated proxy paths never leave the EPCC host or the prefixes, and never 500', async (t) => {
  const stack = await startStack(t)
  const { browser } = await signedIn(stack, 1)
  const cookie = `epcc-bff=${browser.cookie(cookieHost(stack), 'epcc-bff')}`
  const prefixes = [
    '/v2/carts',
    '/v2/orders',
    '/v2/accounts',
    '/v2/account-members',
    '/catalog',
    '/v2/catalog',
  ]
  const variants = proxyPathVariants()
  t.ok(variants.length > 300, `${variants.length} variants`)
  let forwarded = 0
  for (const variant of variants) {
    const before = stack.sim.log.length
    const response = await raw(stack.bff, 'GET', `/api/epcc${variant}`, { 'x-csrf': '1', cookie })
    t.ok(response.status < 500, `${variant} → ${response.status}`)
    for (const request of stack.sim.log.slice(before)) {
      forwarded++
      const path = decodeURIComponent(request.path)
      const allowed = prefixes.some((p) => path === p || path.startsWith(`${p}/`))
      t.ok(
        allowed && !path.startsWith('/v2/account-members/tokens'),
        `${variant} reached EPCC only as ${request.path}`,
      )
    }
  }
  t.comment(
    `${forwarded} of ${variants.length} variants were harmless paths under a prefix and were forwarded`,
  )
})

t.test('login transactions under attack', async (t) => {
  const stack = await startStack(t)
  const member = stack.sim.addMember({ name: 'Vic', email: 'vic@example.com', accounts: 1 })
  stack.sim.directLogin.memberId = member.id
  const EXCHANGE = ['POST', '/v2/account-members/tokens'] as const
  const errorLanding = (code: string) => `${FRONTEND}/login?error=${code}`

  t.test(
    "A-13: a victim's stolen code replayed with the attacker's own state fails PKCE at EPCC",
    async (t) => {
      const victimCallback = await startLogin(stack, new Browser())
      const attacker = new Browser()
      const attackerCallback = await startLogin(stack, attacker)
      const injected = new URL(attackerCallback)
      injected.searchParams.set('code', victimCallback.searchParams.get('code') ?? '')
      const response = await attacker.fetch(injected)
      t.equal(response.headers.get('location'), errorLanding('login_failed'))
      t.equal((await api(stack, attacker, '/session')).status, 401, 'no session for the attacker')
    },
  )

  t.test('A-20: an oversized code is refused before any exchange', async (t) => {
    const browser = new Browser()
    const callbackUrl = await startLogin(stack, browser)
    callbackUrl.searchParams.set('code', 'c'.repeat(3000))
    const before = stack.sim.calls(...EXCHANGE).length
    t.equal((await browser.fetch(callbackUrl)).headers.get('location'), errorLanding('login_failed'))
    t.equal(stack.sim.calls(...EXCHANGE).length, before)
  })

  t.test('A-22: a callback without any cookie is login_expired, not a 500', async (t) => {
    const callbackUrl = await startLogin(stack, new Browser())
    const before = stack.sim.calls(...EXCHANGE).length
    const response = await fetch(callbackUrl, { redirect: 'manual' })
    t.equal(response.headers.get('location'), errorLanding('login_expired'))
    t.equal(stack.sim.calls(...EXCHANGE).length, before)
  })

  t.test('A-24: a browser keeps at most 5 pending logins; the oldest go first', async (t) => {
    const browser = new Browser()
    const callbacks: URL[] = []
    for (let i = 0; i < 7; i++) callbacks.push(await startLogin(stack, browser))
    const before = stack.sim.calls(...EXCHANGE).length
    for (const old of callbacks.slice(0, 2)) {
      t.equal((await browser.fetch(old)).headers.get('location'), errorLanding('login_expired'))
    }
    t.equal(stack.sim.calls(...EXCHANGE).length, before, 'evicted states make no exchange')
    t.equal((await browser.fetch(callbacks[6] ?? '')).headers.get('location'), FRONTEND)
  })

  t.test('A-9: a request line beyond 16 KiB is refused by Node before any handler', async (t) => {
    const response = await raw(stack.bff, 'GET', `/auth/login?returnTo=/${'a'.repeat(17 * 1024)}`)
    t.equal(response.status, 431)
  })
})

t.test(
  'a URL that does not decode gets the BFF error body and headers, not an echo of the URL',
  async (t) => {
    const stack = await startStack(t)
    const response = await stack.app.inject({ method: 'GET', url: '/%F0%9F%98%80/%ZZ' })
    t.equal(response.statusCode, 400)
    t.same(response.json(), { error: 'bad_request', message: 'The request is malformed.' })
    t.equal(response.headers['cache-control'], 'no-store')
    t.equal(response.headers['x-content-type-options'], 'nosniff')
    t.notMatch(response.body, /%ZZ|FST_/)
  },
)

t.test('a proxied body over the limit is refused and its connection closed', async (t) => {
  const stack = await startStack(t)
  const response = await api(stack, new Browser(), '/api/epcc/v2/carts', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `"${'x'.repeat(2 * 1024 * 1024)}"`,
  })
  t.equal(response.status, 413)
  t.equal(response.headers.get('connection'), 'close', 'the rest of the body is not read')
  t.equal(stack.sim.calls('POST', '/v2/carts').length, 0, 'nothing reached EPCC')
})

t.test('TRUST_PROXY=true is named as a risk at start', async (t) => {
  const stack = await startStack(t, { env: { TRUST_PROXY: 'true' } })
  t.ok(
    stack.logs.entries().some((e) => e.level === 40 && String(e.msg).startsWith('TRUST_PROXY=true takes')),
    'a warning at start',
  )
})
