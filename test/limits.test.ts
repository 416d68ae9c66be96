import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { SERVER_LIMITS } from '../src/app.js'
import { StartedLogins } from '../src/login.js'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import { isPendingLoginKey } from '../src/session/records.js'
import { Browser } from './support/browser.js'
import { api, signedIn, startLogin } from './support/flows.js'
import { API, FRONTEND, startStack } from './support/stack.js'

async function expectRateLimited(t: Test, response: Response, what: string): Promise<void> {
  t.equal(response.status, 429, what)
  t.ok(Number(response.headers.get('retry-after')) > 0, `${what}: Retry-After`)
  t.equal(((await response.json()) as { error: string }).error, 'rate_limited', `${what}: rate_limited`)
}

t.test('session and proxy routes are rate limited per session', async (t) => {
  const stack = await startStack(t, { env: { API_RATE_LIMIT_PER_SESSION: '4' } })
  const { browser } = await signedIn(stack, 1)
  const paths = ['/session', '/session/accounts', '/api/epcc/v2/carts/c1', '/session']
  for (const path of paths) t.not((await api(stack, browser, path)).status, 429, path)
  await expectRateLimited(t, await api(stack, browser, '/session'), 'the 5th request of the session')
  await expectRateLimited(t, await api(stack, browser, '/api/epcc/v2/carts/c1'), 'a proxied call')

  const { browser: other } = await signedIn(stack, 1)
  t.equal((await api(stack, other, '/session')).status, 200, 'another session on the same address goes on')
  t.equal((await fetch(`${stack.bff}/healthz`)).status, 200, 'probes are not limited')
})

t.test('a cookie the BFF did not sign spends only its address budget, and is not remembered', async (t) => {
  const stack = await startStack(t, { env: { API_RATE_LIMIT_PER_SESSION: '2' } })
  const { browser } = await signedIn(stack, 1)
  for (let i = 0; i < 2; i++) t.equal((await api(stack, browser, '/session')).status, 200)
  await expectRateLimited(
    t,
    await api(stack, browser, '/session'),
    'the signed-in session is over its budget',
  )

  // Forged cookies (here 8 KiB each, a fresh one per request): none takes a session counter, so none can push
  // a real session's counter out, and none is kept in memory to find its counter again.
  const big = 'x'.repeat(8 * 1024)
  for (let i = 0; i < 5; i++) {
    const response = await fetch(`${stack.bff}/session`, {
      headers: { ...API, cookie: `epcc-bff=${i}${big}` },
    })
    t.not(response.status, 429, `forged cookie ${i}: not limited as a session`)
  }
  const sameForged = { ...API, cookie: `epcc-bff=forged.${'A'.repeat(43)}` }
  for (let i = 0; i < 4; i++) {
    t.not(
      (await fetch(`${stack.bff}/session`, { headers: sameForged })).status,
      429,
      'one forged cookie, again',
    )
  }
  await expectRateLimited(t, await api(stack, browser, '/session'), 'the real session is still limited')
})

t.test('each limit keeps 50,000 counters in process memory, not the plugin default of 5,000', async (t) => {
  const stack = await startStack(t, { env: { RATE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: 'true' } })
  const callback = (address: string) =>
    request(`${stack.bff}/oauth2/callback`, { dispatcher: agent, headers: { 'x-forwarded-for': address } })
  const agent = new Agent({ connections: 8 })
  t.teardown(() => agent.close())
  const first = await callback('198.51.100.1')
  await first.body.dump()
  const second = await callback('198.51.100.1')
  await second.body.dump()
  t.equal(second.statusCode, 429, 'the address is over its budget')
  // More addresses than the plugin's default cache holds, each with its own counter.
  let next = 0
  const others = async () => {
    for (let n = next++; n < 5200; n = next++) {
      const answer = await callback(`10.0.${n >> 8}.${n & 255}`)
      await answer.body.dump()
    }
  }
  await Promise.all(Array.from({ length: 8 }, others))
  const again = await callback('198.51.100.1')
  await again.body.dump()
  t.equal(again.statusCode, 429, 'its counter was not pushed out by 5,200 others')
})

t.test('session and proxy routes are rate limited per client address, IPv6 by /64', async (t) => {
  const stack = await startStack(t, { env: { API_RATE_LIMIT_PER_ADDRESS: '3', TRUST_PROXY: 'true' } })
  const from = (address: string, path = '/api/epcc/v2/carts/c1') =>
    fetch(`${stack.bff}${path}`, { headers: { ...API, 'x-forwarded-for': address } })

  // One /64, different hosts in it, with and without a session cookie: one budget.
  for (const address of ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:fffe', '2001:db8:1:2:abcd::7']) {
    t.not((await from(address)).status, 429, address)
  }
  await expectRateLimited(t, await from('2001:db8:1:2::99'), 'a fourth host of the same /64')
  await expectRateLimited(t, await from('2001:db8:1:2::1', '/session'), '/session from the same /64')
  t.not((await from('2001:db8:1:3::1')).status, 429, 'the next /64 has its own budget')
  t.not((await from('192.0.2.1')).status, 429, 'an IPv4 address has its own budget')

  // A signed-in browser behind the limited /64 is limited too, whatever its session.
  const { browser } = await signedIn(stack, 1)
  const response = await browser.fetch(`${stack.bff}/session`, {
    headers: { ...API, 'x-forwarded-for': '2001:db8:1:2::5' },
  })
  await expectRateLimited(t, response, 'a session from the limited /64')
})

t.test('the server keeps deliberate time and connection limits', async (t) => {
  const stack = await startStack(t, { env: { MAX_CONNECTIONS: '2' } })
  const server = stack.app.server
  t.equal(server.headersTimeout, SERVER_LIMITS.headersTimeoutMs, 'headers within 10 s')
  t.equal(SERVER_LIMITS.headersTimeoutMs, 10_000)
  t.equal(server.requestTimeout, SERVER_LIMITS.requestTimeoutMs, 'a whole request within 30 s')
  t.equal(SERVER_LIMITS.requestTimeoutMs, 30_000)
  t.equal(server.keepAliveTimeout, SERVER_LIMITS.keepAliveTimeoutMs)
  t.equal(server.maxConnections, 2)

  const url = new URL(stack.bff)
  const open = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => resolve(socket))
      socket.on('error', reject)
    })
  const closed = (socket: Socket) => new Promise<void>((resolve) => socket.on('close', () => resolve()))
  const ask = (socket: Socket): Promise<string> =>
    new Promise((resolve) => {
      let answer = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => {
        answer += chunk
        if (answer.includes('\r\n\r\n')) resolve(answer)
      })
      socket.on('close', () => resolve(answer))
      socket.write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')
    })

  const first = await open()
  const second = await open()
  t.teardown(() => {
    first.destroy()
    second.destroy()
  })
  t.match(await ask(first), /^HTTP\/1\.1 200 /, 'the first connection is served')
  const third = await open()
  t.equal(await ask(third), '', 'a connection beyond MAX_CONNECTIONS is closed unanswered')
  first.destroy()
  await closed(first)
  const fourth = await open()
  t.match(await ask(fourth), /^HTTP\/1\.1 200 /, 'once one closes, a new connection is served')
  fourth.destroy()
})

t.test('slow request headers are cut off with 408 request_timeout', async (t) => {
  const stack = await startStack(t)
  const url = new URL(stack.bff)
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(received))
    // The request line and one header, then nothing: the headers never end.
    socket.write('GET /healthz HTTP/1.1\r\nHost: a\r\n')
  })
  t.match(answer, /^HTTP\/1\.1 408 /)
  t.match(answer, /"error":"request_timeout"/)
})

t.test('a flood of unfinished logins never evicts a member', async (t) => {
  // Budgets small enough that the flood below would have evicted everyone from one shared budget.
  const kv = new MemoryKeyValueStore({
    maxChars: 200_000,
    pendingMaxChars: 100_000,
    isPending: isPendingLoginKey,
  })
  const stack = await startStack(t, { kv, env: { RATE_LIMIT_PER_MINUTE: '100000' } })
  const members = [await signedIn(stack, 2), await signedIn(stack, 2), await signedIn(stack, 2)]

  const returnTo = encodeURIComponent(`/${'r'.repeat(1000)}`)
  const flood: Array<Promise<Response>> = []
  for (let i = 0; i < 400; i++) {
    flood.push(fetch(`${stack.bff}/auth/login?returnTo=${returnTo}`, { redirect: 'manual' }))
    if (flood.length === 20) t.ok((await Promise.all(flood.splice(0))).every((r) => r.status === 302))
  }
  t.ok(kv.usage.pendingChars <= 100_000, `pending logins hold ${kv.usage.pendingChars} characters`)
  for (const { browser } of members) {
    t.equal((await api(stack, browser, '/session')).status, 200, 'the member is still signed in')
    t.equal((await api(stack, browser, '/api/epcc/v2/carts/c1')).status, 200, 'and the tokens are there')
  }
  t.equal((await signedIn(stack, 1)).result.location, FRONTEND, 'a new login still completes')
})

t.test(
  'at PENDING_LOGIN_LIMIT a new login gets 503 with Retry-After; members and pending logins go on',
  async (t) => {
    const stack = await startStack(t, { env: { PENDING_LOGIN_LIMIT: '3' } })
    const { browser: member } = await signedIn(stack, 1) // a completed login no longer counts
    const member2 = stack.sim.addMember({ name: 'Pat', email: 'pat@example.com', accounts: 1 })
    stack.sim.directLogin.memberId = member2.id
    const browser = new Browser()
    const pending = [
      await startLogin(stack, browser),
      await startLogin(stack, browser),
      await startLogin(stack, browser),
    ]

    const refused = await fetch(`${stack.bff}/auth/login`, { redirect: 'manual' })
    t.equal(refused.status, 503)
    t.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After')
    t.equal(((await refused.json()) as { error: string }).error, 'overloaded')
    t.equal((await api(stack, member, '/session')).status, 200, 'a member is not affected')

    const completed = await browser.fetch(pending[2] ?? '')
    t.equal(completed.headers.get('location'), FRONTEND, 'a pending login completes')
    const next = await fetch(`${stack.bff}/auth/login`, { redirect: 'manual' })
    t.equal(next.status, 302, 'and makes room for a new one')
  },
)

t.test('a proxied call has one deadline, EPCC_TIMEOUT_MS, from connect to the last body byte', async (t) => {
  const stack = await startStack(t) // EPCC_TIMEOUT_MS=1500
  const { browser } = await signedIn(stack, 1)
  const read = async (path: string) => {
    const response = await api(stack, browser, path)
    const body = await response.text().catch(() => undefined)
    return { status: response.status, body }
  }
  // Each byte within the per-phase timeouts, the whole body in 6 s: the body is cut, never completed.
  stack.sim.fault({ method: 'GET', path: '/v2/carts/trickle', kind: 'trickle', bytes: 20, delayMs: 300 })
  const cut = await read('/api/epcc/v2/carts/trickle')
  t.equal(cut.status, 200, 'the headers came in time')
  t.not(cut.body?.length, 20, 'the body never arrives whole')

  stack.sim.fault({ method: 'GET', path: '/v2/carts/quick', kind: 'trickle', bytes: 5, delayMs: 50 })
  const whole = await read('/api/epcc/v2/carts/quick')
  t.equal(whole.body, '     ', 'a body that ends within the deadline arrives whole')
})

t.test('the pending-login bound frees up as logins come back or expire', async (t) => {
  let now = 1_000_000 * 60_000 + 30_000 // half a minute into a minute
  const started = new StartedLogins(2, () => now)
  t.equal(started.start(), 0)
  now += 60_000
  t.equal(started.start(), 0)
  t.equal(started.start(), 570, 'at the bound: until the oldest minute is 10 minutes past its end')
  started.ended(now)
  t.equal(started.start(), 0, 'a login that came back makes room')
  t.ok(started.start() > 0)
  now += 9 * 60_000 + 30_000 // the first login's minute is now more than 10 minutes old
  t.equal(started.start(), 0, 'an expired login makes room')
})
