import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Browser } from './support/browser.js'
import { api, cookieHost, login, sessionCookie, switchAccount } from './support/flows.js'
import { type Deployment, type Stack, secretsSeen, startStack } from './support/stack.js'

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
  })
}

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
