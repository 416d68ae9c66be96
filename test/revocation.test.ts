import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MemoryKeyValueStore, StoreUnavailableError } from '../src/session/kv.js'
import { isPendingLoginKey } from '../src/session/records.js'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, login, sessionCookie, switchAccount, withCookieOf } from './support/flows.js'
import {
  type Deployment,
  FRONTEND,
  REDIS_TEST_URL,
  SESSION_SECRET,
  type Stack,
  secretsSeen,
  startStack,
} from './support/stack.js'

// Sign out everywhere and operator revocation: every session of a member ends at once, in every browser and
// on every replica, and the per-member index lists exactly the sessions that live.

const CHROME_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0'
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1'

/** A browser with `userAgent`, signed in as `memberId`. */
async function browserOf(stack: Stack, memberId: string, userAgent: string): Promise<Browser> {
  const browser = new Browser({ headers: { 'user-agent': userAgent } })
  const result = await login(stack, browser, memberId)
  if (result.response.status !== 302 || result.location.includes('error=')) {
    throw new Error(`login failed: ${result.location}`)
  }
  return browser
}

function addMember(stack: Stack, accounts = 2) {
  return stack.sim.addMember({ name: 'Ada Buyer', email: `ada-${Math.random()}@example.com`, accounts })
}

const logoutEverywhere = (stack: Stack, browser: Browser) =>
  api(stack, browser, '/auth/logout', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scope: 'everywhere' }),
  })

interface Devices {
  data: Array<{ current: boolean; createdAt: string; lastUsedAt: string; client: string }>
}

async function devices(stack: Stack, browser: Browser): Promise<Devices> {
  const response = await api(stack, browser, '/session/devices')
  if (response.status !== 200) throw new Error(`GET /session/devices: ${response.status}`)
  return (await response.json()) as Devices
}

const clearsCookie = (stack: Stack, response: Response) =>
  response.headers
    .getSetCookie()
    .some((line) => line.startsWith(`${sessionCookie(stack)}=;`) && /Expires=Thu, 01 Jan 1970/i.test(line))

/** What an ended session's next proxied request is told, and whether its cookie is expired with it. */
async function proxiedAnswer(
  stack: Stack,
  browser: Browser,
): Promise<{ status: number; error?: string; cleared: boolean }> {
  const response = await api(stack, browser, '/api/epcc/v2/carts')
  const body = (await response.json()) as { error?: string }
  return { status: response.status, error: body.error, cleared: clearsCookie(stack, response) }
}

/** `bff_sessions_revoked_total{by}` summed over the replicas (the redis front balances each request). */
async function revokedMetric(stack: Stack, by: string): Promise<number> {
  let sum = 0
  for (let i = 0; i < (stack.deployment === 'redis' ? 2 : 1); i++) {
    const text = await (await new Browser().fetch(`${stack.bff}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith(`bff_sessions_revoked_total{by="${by}"}`))
    sum += Number(line?.split(' ')[1] ?? 0)
  }
  return sum
}

for (const deployment of ['http', 'redis'] as Deployment[]) {
  t.test(`deployment: ${deployment}`, async (t) => {
    t.test(
      'sign out everywhere from one browser ends that member’s two browsers, not another member’s',
      async (t) => {
        const stack = await startStack(t, { deployment })
        const ada = addMember(stack)
        const bob = addMember(stack)
        const first = await browserOf(stack, ada.id, CHROME_MAC)
        const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
        const other = await browserOf(stack, bob.id, SAFARI_IPHONE)

        const listed = await devices(stack, first)
        t.same(
          listed.data.map((d) => [d.client, d.current]),
          [
            ['Chrome on macOS', true],
            ['Firefox on Windows', false],
          ],
          'both of the member’s browsers, oldest first, this one marked',
        )
        for (const device of listed.data) {
          t.same(
            Object.keys(device).sort(),
            ['client', 'createdAt', 'current', 'lastUsedAt'],
            'no id, no token',
          )
          t.ok(Date.parse(device.createdAt) <= Date.parse(device.lastUsedAt))
        }
        t.same(
          (await devices(stack, other)).data.map((d) => [d.client, d.current]),
          [['Safari on iOS', true]],
          'another member sees only their own',
        )

        const logout = await logoutEverywhere(stack, first)
        t.equal(logout.status, 204)
        t.ok(clearsCookie(stack, logout), 'this browser’s cookie is expired')

        t.same(
          await proxiedAnswer(stack, second),
          { status: 401, error: 'session_expired', cleared: true },
          'the other browser is signed out at its next request',
        )
        t.equal(second.cookie(cookieHost(stack), sessionCookie(stack)), undefined)
        t.equal((await api(stack, first, '/session')).status, 401)
        t.equal((await api(stack, other, '/session')).status, 200, 'the other member stays signed in')

        t.equal(await stack.countKeys('vault:'), 1, 'the revoked sessions’ tokens are gone from the store')
        t.equal(await stack.countKeys('sess:'), 1)
        t.equal(await stack.countKeys('member:'), 1, 'only the other member is indexed')
        const revoked = stack.logs.entries().filter((e) => e.msg === 'sessions revoked')
        t.same(
          revoked.map((e) => [e.memberId, e.revoked, e.by]),
          [[ada.id, 2, 'member']],
          'one audit line',
        )
        t.equal(await revokedMetric(stack, 'member'), 2, 'counted in /metrics')
      },
    )

    t.test(
      'a login beyond MAX_SESSIONS_PER_MEMBER ends that member’s least recently used session, no other',
      async (t) => {
        // An idle timeout of 20 s writes lastSeenAt back every 2 s: a session used since is "more recent".
        const stack = await startStack(t, {
          deployment,
          env: { MAX_SESSIONS_PER_MEMBER: '2', SESSION_IDLE_TIMEOUT_S: '20' },
        })
        const ada = addMember(stack)
        const bob = addMember(stack)
        const first = await browserOf(stack, ada.id, CHROME_MAC)
        const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
        const other = await browserOf(stack, bob.id, SAFARI_IPHONE)
        await sleep(2100)
        t.equal((await api(stack, first, '/session')).status, 200, 'the first browser is used again')

        const third = await browserOf(stack, ada.id, SAFARI_IPHONE)
        t.same(
          await proxiedAnswer(stack, second),
          { status: 401, error: 'session_expired', cleared: true },
          'the session unused the longest is signed out at its next request',
        )
        t.equal((await api(stack, first, '/session')).status, 200, 'the one used since stays')
        t.equal((await api(stack, third, '/session')).status, 200, 'the new one works')
        t.equal((await api(stack, other, '/session')).status, 200, 'another member is not touched')
        t.same(
          (await devices(stack, third)).data.map((d) => [d.client, d.current]),
          [
            ['Chrome on macOS', false],
            ['Safari on iOS', true],
          ],
          'two sessions listed',
        )
        t.equal(await stack.countKeys('vault:'), 3, 'the ended session’s tokens are gone from the store')
        t.same(
          stack.logs
            .entries()
            .filter((e) => e.msg === 'sessions revoked')
            .map((e) => [e.memberId, e.revoked, e.by]),
          [[ada.id, 1, 'limit']],
          'an audit line',
        )
        t.equal(await revokedMetric(stack, 'limit'), 1, 'counted in /metrics')
      },
    )
  })
}

t.test('a store that fails while the session limit is applied does not fail the login', async (t) => {
  // The member's index can be written but not read back: the login's session exists, its limit cannot be
  // checked. The login completes; the limit waits for the next one.
  class IndexUnreadable extends MemoryKeyValueStore {
    override async mapGetAll(key: string): Promise<Record<string, string>> {
      if (key.startsWith('member:')) throw new StoreUnavailableError(new Error('connection reset'))
      return super.mapGetAll(key)
    }
  }
  const kv = new IndexUnreadable({ isPending: isPendingLoginKey })
  const stack = await startStack(t, { kv, env: { MAX_SESSIONS_PER_MEMBER: '1' } })
  const ada = addMember(stack)
  const first = await browserOf(stack, ada.id, CHROME_MAC)
  const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
  t.equal((await api(stack, second, '/session')).status, 200, 'the login completed')
  t.equal((await api(stack, first, '/session')).status, 200, 'nothing was ended')
  t.same(
    stack.logs
      .entries()
      .filter((e) => e.msg === 'session limit not applied')
      .map((e) => [e.level, e.memberId, e.err]),
    [
      [40, ada.id, 'StoreUnavailableError'],
      [40, ada.id, 'StoreUnavailableError'],
    ],
    'a warn line per login, naming the error, nothing of the session',
  )
})

t.test('the index', async (t) => {
  t.test('a switched session stays listed and is ended by sign out everywhere', async (t) => {
    const stack = await startStack(t, { deployment: 'redis' })
    const ada = addMember(stack, 3)
    const first = await browserOf(stack, ada.id, CHROME_MAC)
    const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
    const target = ada.accounts[1]?.id ?? ''
    t.equal((await switchAccount(stack, first, target)).status, 200)
    const listed = await devices(stack, second)
    t.same(
      listed.data.map((d) => [d.client, d.current]),
      [
        ['Chrome on macOS', false],
        ['Firefox on Windows', true],
      ],
    )
    t.equal((await logoutEverywhere(stack, second)).status, 204)
    t.same(await proxiedAnswer(stack, first), { status: 401, error: 'session_expired', cleared: true })
    t.equal(await stack.countKeys('vault:'), 0)
    t.equal(await stack.countKeys('member:'), 0)
  })

  t.test(
    'sign out everywhere from a stale tab (its id replaced by a switch): retried with the current cookie, it ends every session',
    async (t) => {
      const stack = await startStack(t, { deployment: 'redis' })
      const ada = addMember(stack, 3)
      const first = await browserOf(stack, ada.id, CHROME_MAC)
      const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
      const staleTab = withCookieOf(stack, first)
      t.equal((await switchAccount(stack, first, ada.accounts[2]?.id ?? '')).status, 200)
      const stale = await logoutEverywhere(stack, staleTab)
      t.equal(stale.status, 401, 'an old cookie is not enough to sign a member out everywhere')
      t.equal(
        ((await stale.json()) as { error: string }).error,
        'session_replaced',
        'retry with the current one',
      )
      t.equal((await logoutEverywhere(stack, first)).status, 204)
      t.equal(first.cookie(cookieHost(stack), sessionCookie(stack)), undefined, 'this browser is signed out')
      t.same(await proxiedAnswer(stack, second), { status: 401, error: 'session_expired', cleared: true })
      t.equal(await stack.countKeys('member:'), 0)
    },
  )

  t.test('never lists a dead session, and leaves no key once the last one ends', async (t) => {
    const stack = await startStack(t, { deployment: 'redis', env: { SESSION_IDLE_TIMEOUT_S: '2' } })
    const ada = addMember(stack)
    const idle = await browserOf(stack, ada.id, SAFARI_IPHONE)
    const first = await browserOf(stack, ada.id, CHROME_MAC)
    const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
    t.equal((await api(stack, first, '/auth/logout', { method: 'POST' })).status, 204, 'a plain logout')
    // The idle browser's session runs out; the other one is kept in use meanwhile.
    for (let i = 0; i < 3; i++) {
      await sleep(1000)
      t.equal((await api(stack, second, '/session')).status, 200)
    }
    t.same(
      (await devices(stack, second)).data.map((d) => d.client),
      ['Firefox on Windows'],
      'neither the logged-out nor the expired session is listed',
    )
    t.equal((await api(stack, idle, '/session')).status, 401)
    t.equal(await stack.countKeys('member:'), 1)
    // A broken body still logs out this session.
    const broken = await api(stack, second, '/auth/logout', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"scope":',
    })
    t.equal(broken.status, 204)
    t.equal(await stack.countKeys('member:'), 0, 'no key is left after the member’s last session')
    t.equal(await stack.countKeys('sess:'), 0)
    t.equal(await stack.countKeys('vault:'), 0)
  })

  t.test('sign out everywhere without a session is a plain 204', async (t) => {
    const stack = await startStack(t)
    const response = await logoutEverywhere(stack, new Browser())
    t.equal(response.status, 204)
    t.equal((await api(stack, new Browser(), '/session/devices')).status, 401)
    t.same(
      secretsSeen(stack.sim).filter((s) => stack.logs.text.includes(s)),
      [],
    )
  })
})

const ADMIN_TOKEN = 'operator-token-0123456789abcdef-0123456789'

function admin(base: string, memberId: string, init: RequestInit = {}, token: string | null = ADMIN_TOKEN) {
  const headers = new Headers(init.headers)
  if (token !== null) headers.set('authorization', `Bearer ${token}`)
  return new Browser().fetch(`${base}/admin/members/${memberId}/sessions`, { ...init, headers })
}

t.test('the administration API', async (t) => {
  t.test('an operator on one replica revokes what was created on others', async (t) => {
    const stack = await startStack(t, { deployment: 'redis', env: { ADMIN_TOKEN } })
    const ada = addMember(stack)
    const bob = addMember(stack)
    // Through the balancing front: the two logins land on the two replicas.
    const first = await browserOf(stack, ada.id, CHROME_MAC)
    const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
    const other = await browserOf(stack, bob.id, SAFARI_IPHONE)
    const tabs = [first, first, second, second].map((b) => withCookieOf(stack, b))
    const sessionIds = [first, second].map(
      (b) => decodeURIComponent(b.cookie(cookieHost(stack), sessionCookie(stack)) ?? '').split('.')[0] ?? '',
    )
    const replica = await stack.replica()

    const listed = await admin(replica.bff, ada.id)
    t.equal(listed.status, 200)
    t.equal(listed.headers.get('cache-control'), 'no-store')
    const body = (await listed.json()) as { data: Array<Record<string, string>> }
    t.same(
      body.data.map((d) => [Object.keys(d).sort(), d.client]),
      [
        [['client', 'createdAt', 'lastUsedAt'], 'Chrome on macOS'],
        [['client', 'createdAt', 'lastUsedAt'], 'Firefox on Windows'],
      ],
      'both sessions, no id, no token',
    )

    const revoke = await admin(replica.bff, ada.id, { method: 'DELETE' })
    t.equal(revoke.status, 200)
    t.same(await revoke.json(), { revoked: 2 })
    t.same(revoke.headers.getSetCookie(), [], 'no cookie')

    // Each tab's next request, whichever replica it reaches, is signed out; the front alternates replicas.
    for (const tab of tabs) {
      t.same(await proxiedAnswer(stack, tab), { status: 401, error: 'session_expired', cleared: true })
    }
    t.equal((await api(stack, other, '/session')).status, 200, 'another member stays signed in')
    t.equal(await stack.countKeys('vault:'), 1, 'the revoked tokens are gone from the store')
    t.equal(await stack.countKeys('member:'), 1)
    t.same((await (await admin(replica.bff, ada.id)).json()) as object, { data: [] })
    t.same((await (await admin(replica.bff, ada.id, { method: 'DELETE' })).json()) as object, { revoked: 0 })

    const audit = stack.logs.entries().filter((e) => e.msg === 'sessions revoked')
    t.same(
      audit.map((e) => [e.memberId, e.revoked, e.by]),
      [
        [ada.id, 2, 'operator'],
        [ada.id, 0, 'operator'],
      ],
    )
    const replicaMetrics = await (await fetch(`${replica.bff}/metrics`)).text()
    t.match(replicaMetrics, /bff_sessions_revoked_total\{by="operator"\} 2/)
    const secrets = [...secretsSeen(stack.sim), ADMIN_TOKEN, ...sessionIds]
    t.equal(sessionIds.filter((id) => id.length >= 43).length, 2, 'the session ids were read')
    t.same(
      secrets.filter((s) => stack.logs.text.includes(s)),
      [],
      'no token, admin token or session id in any log line',
    )
  })

  t.test('a wrong, missing or short token is 401; no CORS, no cookie', async (t) => {
    const stack = await startStack(t, { env: { ADMIN_TOKEN } })
    const { id } = addMember(stack)
    const tries: Array<[string, Record<string, string>]> = [
      ['missing', {}],
      ['wrong', { authorization: `Bearer ${ADMIN_TOKEN.replace('0', '1')}` }],
      ['short', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, 16)}` }],
      ['longer', { authorization: `Bearer ${ADMIN_TOKEN}x` }],
      ['not bearer', { authorization: `Basic ${ADMIN_TOKEN}` }],
      ['empty', { authorization: 'Bearer ' }],
    ]
    for (const [name, headers] of tries) {
      for (const method of ['GET', 'DELETE']) {
        const response = await admin(stack.bff, id, { method, headers }, null)
        t.equal(response.status, 401, `${name} ${method}`)
        t.equal(((await response.json()) as { error: string }).error, 'unauthorized')
      }
    }
    const refusals = stack.logs.entries().filter((e) => e.msg === 'admin refused')
    t.equal(refusals.length, tries.length * 2, 'every refusal is an audit line')
    t.same(
      [...new Set(refusals.map((e) => `${e.level} ${e.ip} ${e.reason}`))].sort(),
      ['40 127.0.0.1 no bearer token', '40 127.0.0.1 wrong token'],
      'at warn level, with the client address and why',
    )
    t.same(
      tries
        .flatMap(([, headers]) => headers.authorization?.split(' ')[1] ?? [])
        .filter((sent) => sent.length > 0 && stack.logs.text.includes(sent)),
      [],
      'never with what was sent',
    )
    const badId = await admin(stack.bff, 'not-a-member-id', {}, 'wrong')
    t.equal(badId.status, 401, 'the token is checked before anything else')
    const malformed = await admin(stack.bff, 'not-a-member-id')
    t.equal(malformed.status, 400)
    t.equal(((await malformed.json()) as { error: string }).error, 'bad_request')

    const browser = await browserOf(stack, id, CHROME_MAC)
    const cookie = `${sessionCookie(stack)}=${browser.cookie(cookieHost(stack), sessionCookie(stack))}`
    const fromShop = await admin(stack.bff, id, { headers: { origin: FRONTEND, cookie } })
    t.equal(fromShop.status, 200)
    t.equal(fromShop.headers.get('access-control-allow-origin'), null, 'no CORS answer for an allowed origin')
    t.same(fromShop.headers.getSetCookie(), [], 'the cookie is neither read nor set')
    const preflight = await new Browser().fetch(`${stack.bff}/admin/members/${id}/sessions`, {
      method: 'OPTIONS',
      headers: { origin: FRONTEND, 'access-control-request-method': 'DELETE' },
    })
    t.equal(preflight.headers.get('access-control-allow-origin'), null, 'a preflight is not admitted')
    t.not(preflight.status, 204)

    // Guessing is rate limited like the login routes.
    let limited = 0
    for (let i = 0; i < 130 && limited === 0; i++) {
      const response = await admin(stack.bff, id, {}, `guess-${i}`)
      if (response.status === 429) limited++
      await response.body?.cancel()
    }
    t.equal(limited, 1, 'guesses are rate limited')
  })

  t.test('without ADMIN_TOKEN every administration path is 404', async (t) => {
    const stack = await startStack(t)
    const { id } = addMember(stack)
    for (const method of ['GET', 'DELETE']) {
      for (const token of [null, ADMIN_TOKEN, '']) {
        const response = await admin(stack.bff, id, { method }, token)
        t.equal(response.status, 404, `${method} with ${token === null ? 'no' : 'a'} token`)
      }
    }
    t.equal((await new Browser().fetch(`${stack.bff}/admin/anything`)).status, 404)
  })

  t.test('npm run revoke ends a member’s sessions in a Redis deployment', async (t) => {
    // The command uses the server's own environment, and so its key prefix: the stack shares it here.
    const kv = new RedisKeyValueStore(REDIS_TEST_URL)
    const stack = await startStack(t, { kv })
    const ada = addMember(stack)
    const browser = await browserOf(stack, ada.id, CHROME_MAC)
    const env = {
      PATH: process.env.PATH ?? '',
      EPCC_BASE_URL: stack.sim.apiUrl,
      EPCC_CLIENT_ID: stack.sim.clientId,
      PUBLIC_URL: stack.publicUrl,
      FRONTEND_URL: FRONTEND,
      SESSION_SECRET,
      REDIS_URL: REDIS_TEST_URL,
    }
    const usage = await run(['--member', 'nope'], env)
    t.equal(usage.code, 2)
    t.match(usage.stderr, /usage: npm run revoke -- --member <memberId>/)
    const done = await run(['--member', ada.id], env)
    t.equal(done.code, 0, done.stderr)
    t.same(JSON.parse(done.stdout), { revoked: 1 })
    t.match(done.stderr, /"by":"operator"/, 'an audit line')
    t.same(await proxiedAnswer(stack, browser), { status: 401, error: 'session_expired', cleared: true })
    t.same({ ...(await kv.mapGetAll(`member:${ada.id}`)) }, {}, 'no index key is left')
  })
})

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/revoke.ts', ...args], {
      env,
      cwd: process.cwd(),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

t.test('what an old cookie cannot do', async (t) => {
  const stack = await startStack(t, { env: { ADMIN_TOKEN } })

  t.test('a replaced id does not sign the member out everywhere', async (t) => {
    const ada = addMember(stack)
    const first = await browserOf(stack, ada.id, CHROME_MAC)
    const second = await browserOf(stack, ada.id, FIREFOX_WINDOWS)
    const old = withCookieOf(stack, first)
    t.equal((await switchAccount(stack, first, ada.accounts[1]?.id)).status, 200)
    const logout = await api(stack, old, '/auth/logout', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'everywhere' }),
    })
    t.equal(logout.status, 401)
    t.equal(((await logout.json()) as { error: string }).error, 'session_replaced')
    t.equal((await api(stack, second, '/session')).status, 200, 'the other browser is still signed in')
    t.equal((await api(stack, first, '/session')).status, 200, 'and so is the one the old cookie came from')
  })

  t.test(
    'a planted pre-login cookie, replaced by the victim’s login, cannot add a login to it',
    async (t) => {
      const victim = addMember(stack)
      const attacker = addMember(stack)
      // The attacker's pre-login cookie, planted in the victim's browser before the victim signs in.
      const attackerBrowser = new Browser()
      await attackerBrowser.fetch(`${stack.bff}/auth/login`)
      const planted = withCookieOf(stack, attackerBrowser)
      const result = await login(stack, planted, victim.id)
      t.equal(result.response.status, 302)
      // With the replaced cookie the attacker starts a login of its own, then makes the victim's browser open it.
      const stale = withCookieOf(stack, attackerBrowser)
      stack.sim.directLogin.memberId = attacker.id
      const start = await stale.fetch(`${stack.bff}/auth/login`)
      const { url: callback } = await stale.follow(start.headers.get('location') ?? '', {
        stopAt: (u) => u.href.startsWith(`${stack.publicUrl}/oauth2/callback`),
      })
      const landed = await planted.fetch(callback)
      t.match(landed.headers.get('location'), /error=login_expired/, 'the callback is not the victim’s')
      const session = (await (await api(stack, planted, '/session')).json()) as { member: { id: string } }
      t.equal(session.member.id, victim.id, 'the victim is still signed in as themselves')
    },
  )

  t.test('the administration API takes a member id in any letter case', async (t) => {
    const ada = addMember(stack)
    const browser = await browserOf(stack, ada.id, CHROME_MAC)
    const revoked = await admin(stack.bff, ada.id.toUpperCase(), { method: 'DELETE' })
    t.same(await revoked.json(), { revoked: 1 })
    t.equal((await api(stack, browser, '/session')).status, 401)
  })
})
