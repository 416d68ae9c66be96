import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { SimRequest } from '../dev/epcc-sim/index.js'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, signedIn, tokenCalls } from './support/flows.js'
import { API, type Stack, type StackOptions, startStack } from './support/stack.js'

const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'
const ACCOUNT_TOKEN = 'ep-account-management-authentication-token'
/** Account tokens live this long here, so that renewal comes due within seconds (it starts at a quarter). */
const TTL_S = 10
/**
 * How long before the token's expiry the tests act: inside the renewal window (a quarter of a 9–10 s lifetime;
 * the simulator's expiry has whole seconds), with time to spare for a busy machine.
 */
const DUE_MS = 2000

/** The switch calls that reached EPCC: renewals (and page reads) with the current account token. */
const renewals = (stack: Stack) => tokenCalls(stack)

/** The `exp` claim (epoch ms) of the account token EPCC received in `request`. */
function tokenExpiry(request: SimRequest | undefined): number | undefined {
  const payload = request?.headers[ACCOUNT_TOKEN]?.split('.')[1]
  if (!payload) return undefined
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp: number }).exp * 1000
}

/** `expiresAt` of GET /session, epoch ms. */
async function expiresAt(stack: Stack, browser: Browser, bff = stack.bff): Promise<number> {
  const response = await browser.fetch(`${bff}/session`, { headers: API })
  if (response.status !== 200) throw new Error(`GET /session: ${response.status}`)
  return Date.parse(((await response.json()) as { expiresAt: string }).expiresAt)
}

/**
 * The tests below run side by side, but their stacks start one at a time, so that eight start-ups (each a
 * simulator, a BFF and a realm fetch) do not pile onto the timing-sensitive tests already running.
 */
let starting: Promise<unknown> = Promise.resolve()
function stackFor(t: Test, opts: StackOptions): Promise<Stack> {
  const started = starting.then(() => startStack(t, opts))
  starting = started.catch(() => {})
  return started
}

const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()))

/** Another browser holding the same session cookie (a second tab, or the same browser on another host). */
function sameCookie(stack: Stack, browser: Browser, host = cookieHost(stack), into = new Browser()): Browser {
  into.setCookie(host, 'epcc-bff', browser.cookie(cookieHost(stack), 'epcc-bff') ?? '')
  return into
}

/** How many responses had each status, e.g. `{ 200: 50 }`. */
function statusCounts(responses: Response[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const r of responses) counts[r.status] = (counts[r.status] ?? 0) + 1
  return counts
}

t.test('account-token renewal', { jobs: 8 }, async (t) => {
  t.test(
    '50 concurrent requests when the token needs renewal: one renewal reaches EPCC, all 50 succeed',
    async (t) => {
      const stack = await stackFor(t, { sim: { accountTokenTtlS: TTL_S } })
      const { browser } = await signedIn(stack, 3)
      const oldExpiry = await expiresAt(stack, browser)
      await sleepUntil(oldExpiry - DUE_MS)
      stack.sim.clearLog()
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => api(stack, browser, '/api/epcc/v2/carts')),
      )
      t.same(statusCounts(responses), { 200: 50 })
      const [renewal, ...more] = renewals(stack)
      t.equal(more.length, 0, 'exactly one renewal call')
      t.equal(tokenExpiry(renewal), oldExpiry, 'the renewal sent the current token')
      const carried = new Set(stack.sim.calls('GET', '/v2/carts').map((r) => r.headers[ACCOUNT_TOKEN]))
      t.equal(carried.size, 1, 'all 50 carried one token')
      const newExpiry = tokenExpiry(stack.sim.calls('GET', '/v2/carts')[0]) ?? 0
      t.ok(newExpiry > oldExpiry, 'the renewed one')
      t.equal(await expiresAt(stack, browser), newExpiry, 'expiresAt moved with the renewal')
    },
  )

  t.test('the same across two replicas on one Redis: 25 requests each, one renewal', async (t) => {
    const prefix = `test:renewal:${process.pid}:${Date.now()}:`
    const store = () => new RedisKeyValueStore(REDIS_URL, { prefix })
    const stack = await stackFor(t, { sim: { accountTokenTtlS: TTL_S }, kv: store() })
    const second = await stack.replica({}, store())
    const { browser } = await signedIn(stack, 3)
    // The storefront reaches whichever replica the load balancer picks, with the one cookie.
    sameCookie(stack, browser, new URL(second.bff).host, browser)
    const oldExpiry = await expiresAt(stack, browser)
    t.equal(await expiresAt(stack, browser, second.bff), oldExpiry, 'the second replica sees the session')
    await sleepUntil(oldExpiry - DUE_MS)
    stack.sim.clearLog()
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        browser.fetch(`${i % 2 ? second.bff : stack.bff}/api/epcc/v2/carts`, { headers: API }),
      ),
    )
    t.same(statusCounts(responses), { 200: 50 })
    t.equal(renewals(stack).length, 1, 'exactly one renewal call, across both replicas')
    const carried = new Set(stack.sim.calls('GET', '/v2/carts').map((r) => r.headers[ACCOUNT_TOKEN]))
    t.equal(carried.size, 1, 'all 50 carried the renewed token')
    t.ok((tokenExpiry(stack.sim.calls('GET', '/v2/carts')[0]) ?? 0) > oldExpiry)
  })

  t.test(
    'idle past the token lifetime: 401 session_expired on the proxy, 401 unauthenticated on /session',
    async (t) => {
      const stack = await stackFor(t, { sim: { accountTokenTtlS: TTL_S } })
      const { browser } = await signedIn(stack, 1)
      const expiry = await expiresAt(stack, browser)
      await sleepUntil(expiry + 200)
      stack.sim.clearLog()
      const session = await api(stack, sameCookie(stack, browser), '/session')
      t.equal(session.status, 401)
      t.equal(((await session.json()) as { error: string }).error, 'unauthenticated')
      const proxied = await api(stack, browser, '/api/epcc/v2/carts')
      t.equal(proxied.status, 401)
      t.equal(((await proxied.json()) as { error: string }).error, 'session_expired')
      t.match(proxied.headers.getSetCookie().join('\n'), /^epcc-bff=;.*Expires=Thu, 01 Jan 1970/m)
      t.same(
        stack.sim.log.map((r) => `${r.method} ${r.path}`),
        [],
        'an idle session is not renewed, and nothing is forwarded with its old token',
      )
    },
  )

  t.test(
    'active across three token lifetimes: still signed in, and expiresAt tells the truth throughout',
    async (t) => {
      const ttlS = 4
      const stack = await stackFor(t, { sim: { accountTokenTtlS: ttlS } })
      const { browser } = await signedIn(stack, 2)
      const statuses: number[] = []
      const told: number[] = []
      const started = Date.now()
      while (Date.now() - started < 3 * ttlS * 1000 + 500) {
        const session = await api(stack, browser, '/session')
        statuses.push(session.status)
        if (session.status === 200) {
          told.push(Date.parse(((await session.json()) as { expiresAt: string }).expiresAt))
        }
        statuses.push((await api(stack, browser, '/api/epcc/v2/accounts')).status)
        await sleep(200)
      }
      t.same([...new Set(statuses)], [200], 'every request succeeded')
      t.ok(renewals(stack).length >= 3, `renewed ${renewals(stack).length} times`)
      // Each expiresAt is the expiry of the token then active (the idle deadline is half an hour away).
      const expiries = new Set(stack.sim.calls('GET', '/v2/accounts').map(tokenExpiry))
      t.same(
        told.filter((at) => !expiries.has(at)),
        [],
        "every expiresAt was an active token's expiry",
      )
      t.same(
        told,
        [...told].sort((a, b) => a - b),
        'never earlier again',
      )
      t.ok(new Set(told).size >= 4, 'later again after each renewal')

      // Left alone, the session ends exactly when it last said it would.
      await sleepUntil((told.at(-1) ?? 0) + 200)
      t.equal((await api(stack, browser, '/session')).status, 401, 'gone once its expiresAt passed')
    },
  )

  t.test('a renewal EPCC refuses ends the session: 401 session_expired, and it is gone', async (t) => {
    const stack = await stackFor(t, { sim: { accountTokenTtlS: TTL_S } })
    const { browser } = await signedIn(stack, 2)
    const tab = sameCookie(stack, browser)
    const expiry = await expiresAt(stack, browser)
    await sleepUntil(expiry - DUE_MS)
    stack.sim.clearLog()
    stack.sim.fault({ method: 'POST', path: '/v2/account-members/tokens', kind: 'status', status: 401 })
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => api(stack, browser, '/api/epcc/v2/carts')),
    )
    t.same(statusCounts(responses), { 401: 10 })
    for (const response of responses) {
      t.equal(((await response.json()) as { error: string }).error, 'session_expired')
    }
    t.match(responses[0]?.headers.getSetCookie().join('\n'), /^epcc-bff=;.*Expires=Thu, 01 Jan 1970/m)
    // A 401 may be EPCC refusing the store token: the renewal is tried once more, with a new one.
    const attempts = renewals(stack)
    t.equal(attempts.length, 2, 'one renewal, tried once more')
    t.not(attempts[0]?.headers.authorization, attempts[1]?.headers.authorization, 'with a new store token')
    t.equal(stack.sim.calls('POST', '/oauth/access_token').length, 1, 'one new store token')
    t.same(stack.sim.calls('GET', '/v2/carts'), [], 'nothing forwarded with the old token')
    stack.sim.clearFaults()
    t.equal((await api(stack, tab, '/session')).status, 401, 'the session is gone for every tab')
    t.equal((await api(stack, tab, '/api/epcc/v2/carts')).status, 401)
    t.equal(renewals(stack).length, 2, 'and is not renewed later')
  })

  t.test('EPCC unavailable at renewal: the current token serves, the next request renews', async (t) => {
    const stack = await stackFor(t, { sim: { accountTokenTtlS: TTL_S } })
    const { browser } = await signedIn(stack, 1)
    const expiry = await expiresAt(stack, browser)
    await sleepUntil(expiry - DUE_MS)
    stack.sim.clearLog()
    stack.sim.fault({
      method: 'POST',
      path: '/v2/account-members/tokens',
      kind: 'status',
      status: 503,
      times: 1,
    })
    t.equal((await api(stack, browser, '/api/epcc/v2/carts')).status, 200)
    t.equal(tokenExpiry(stack.sim.calls('GET', '/v2/carts')[0]), expiry, 'with the current token')
    t.equal((await api(stack, browser, '/api/epcc/v2/carts')).status, 200)
    t.equal(renewals(stack).length, 2, 'tried again on the next request')
    t.ok((tokenExpiry(stack.sim.calls('GET', '/v2/carts')[1]) ?? 0) > expiry, 'with the renewed token')
  })
})
