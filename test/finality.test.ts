import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createBffClient } from '../client/index.js'
import { Browser } from './support/browser.js'
import {
  api,
  cookieHost,
  inFlightAtEpcc,
  sessionCookie,
  signedIn,
  switchAccount,
  withCookieOf,
} from './support/flows.js'
import { inEachDeployment, type Stack } from './support/stack.js'

// Logout, switch and expiry are final: no request in flight, no tab and no deployment brings an old session
// back. The simulator holds a request of the session at EPCC while the browser logs out or switches.

const ACCOUNT_TOKEN = 'ep-account-management-authentication-token'
/** Account tokens live 10 s, so renewal (the last quarter) comes due within seconds. */
const TOKEN_TTL_S = 10
/** Held at EPCC this long: well inside the harness's 1.5 s EPCC_TIMEOUT_MS. */
const HOLD_MS = 800

const isTokenCall = (mechanism: string) => (r: { method: string; path: string; body: unknown }) =>
  r.method === 'POST' &&
  r.path === '/v2/account-members/tokens' &&
  (r.body as { data?: { authentication_mechanism?: string } })?.data?.authentication_mechanism === mechanism

const sessionCookieLines = (stack: Stack, response: Response) =>
  response.headers.getSetCookie().filter((line) => line.startsWith(`${sessionCookie(stack)}=`))

async function errorOf(response: Response): Promise<string> {
  return ((await response.json()) as { error: string }).error
}

inEachDeployment(t, async (t, deployment) => {
  const { startStack } = await import('./support/stack.js')

  t.test('a renewal in flight while the browser logs out writes nothing back', async (t) => {
    const stack = await startStack(t, { deployment, sim: { accountTokenTtlS: TOKEN_TTL_S } })
    const vaultsBefore = await stack.countKeys('vault:')
    const { browser } = await signedIn(stack, 2)
    const oldCookie = withCookieOf(stack, browser)
    // Into the renewal window (the last 2.5 s of a 10 s token), with a margin for a busy machine.
    await sleep((TOKEN_TTL_S - 2) * 1000)
    stack.sim.fault({
      method: 'POST',
      path: '/v2/account-members/tokens',
      kind: 'delay',
      delayMs: HOLD_MS,
      times: 1,
    })

    const late = api(stack, browser, '/api/epcc/v2/carts')
    await inFlightAtEpcc(stack, isTokenCall('account_management_authentication_token'))
    const logout = await api(stack, browser, '/auth/logout', { method: 'POST' })
    t.equal(logout.status, 204)
    const lateResponse = await late
    t.same(sessionCookieLines(stack, lateResponse), [], 'the late response sends no cookie for the ended id')
    await lateResponse.body?.cancel()

    const session = await api(stack, withCookieOf(stack, oldCookie), '/session')
    t.equal(session.status, 401, 'the old id is signed out on /session')
    const proxied = await api(stack, withCookieOf(stack, oldCookie), '/api/epcc/v2/carts')
    t.equal(proxied.status, 401)
    t.equal(await errorOf(proxied), 'session_expired', 'and on the proxy')
    t.equal(await stack.countKeys('vault:'), vaultsBefore, 'the renewed tokens were not written back')
    t.equal(await stack.countKeys('sess:'), 0, 'no session record is left')
    t.equal(browser.cookie(cookieHost(stack), sessionCookie(stack)), undefined, 'the browser holds no cookie')
  })

  t.test('an accounts page in flight while another tab switches account', async (t) => {
    const stack = await startStack(t, { deployment })
    // 150 accounts: the page past the first 100 is read from EPCC (and remembered in the session).
    const { browser, member } = await signedIn(stack, 150)
    const tabB = withCookieOf(stack, browser)
    stack.sim.fault({
      method: 'POST',
      path: '/v2/account-members/tokens',
      kind: 'delay',
      delayMs: HOLD_MS,
      times: 1,
    })

    const late = api(stack, tabB, '/session/accounts?page[offset]=100&page[limit]=25')
    await inFlightAtEpcc(stack, isTokenCall('account_management_authentication_token'))
    const switched = await switchAccount(stack, browser, member.accounts[1]?.id)
    t.equal(switched.status, 200)
    const lateResponse = await late
    t.equal(lateResponse.status, 200, 'the page that was asked for')
    t.same(sessionCookieLines(stack, lateResponse), [], 'the late response sends no cookie for the old id')

    const stale = await api(stack, tabB, '/session')
    t.equal(stale.status, 401)
    t.equal(await errorOf(stale), 'session_replaced', 'the old id is replaced, not signed in')
    t.same(sessionCookieLines(stack, stale), [], 'and its answer changes no cookie')
    const staleProxy = await api(stack, tabB, '/api/epcc/v2/carts')
    t.equal(staleProxy.status, 401)
    t.equal(await errorOf(staleProxy), 'session_replaced')

    const now = await api(stack, browser, '/session')
    t.equal(now.status, 200, 'the browser is signed in')
    t.equal(
      ((await now.json()) as { activeAccount: { id: string } }).activeAccount.id,
      member.accounts[1]?.id,
    )
    stack.sim.clearLog()
    t.equal((await api(stack, browser, '/api/epcc/v2/carts')).status, 200)
    const sent = stack.sim.calls('GET', '/v2/carts')[0]?.headers[ACCOUNT_TOKEN] ?? ''
    const claims = JSON.parse(Buffer.from(sent.split('.')[1] ?? '', 'base64url').toString('utf8'))
    t.ok(
      JSON.stringify(claims).includes(member.accounts[1]?.id ?? '-'),
      "EPCC calls carry the second account's token",
    )
  })

  t.test('a switch in flight while the browser logs out does not sign it back in', async (t) => {
    const stack = await startStack(t, { deployment })
    const { browser, member } = await signedIn(stack, 150)
    // Account 120 is not among the tokens held: the switch reads EPCC's list, held at the simulator.
    stack.sim.fault({
      method: 'POST',
      path: '/v2/account-members/tokens',
      kind: 'delay',
      delayMs: HOLD_MS,
      times: 1,
    })
    const late = switchAccount(stack, withCookieOf(stack, browser), member.accounts[120]?.id)
    await inFlightAtEpcc(stack, isTokenCall('account_management_authentication_token'))
    t.equal((await api(stack, browser, '/auth/logout', { method: 'POST' })).status, 204)
    const lateResponse = await late
    t.equal(lateResponse.status, 401, 'the switch finds the session ended')
    t.equal(await stack.countKeys('sess:'), 0, 'no session record was created')
    t.equal(await stack.countKeys('vault:'), 0, 'no tokens are left')
    t.equal((await api(stack, browser, '/session')).status, 401)
  })

  t.test('a stale tab gets session_replaced and signs no tab out; the retry works', async (t) => {
    const stack = await startStack(t, { deployment })
    const { browser, member } = await signedIn(stack, 2)
    const staleTab = withCookieOf(stack, browser)
    t.equal((await switchAccount(stack, browser, member.accounts[1]?.id)).status, 200)
    for (const path of ['/session', '/session/accounts', '/api/epcc/v2/carts']) {
      const response = await api(stack, staleTab, path)
      t.equal(response.status, 401, path)
      t.equal(await errorOf(response), 'session_replaced', path)
      t.same(sessionCookieLines(stack, response), [], `${path}: no cookie change`)
    }
    const again = await switchAccount(stack, staleTab, member.accounts[0]?.id)
    t.equal(again.status, 401, 'a second switch with the old id')
    t.equal(await errorOf(again), 'session_replaced')
    t.equal((await api(stack, browser, '/session')).status, 200, 'the browser is still signed in')
    t.equal((await api(stack, browser, '/api/epcc/v2/carts')).status, 200)
  })

  t.test(
    'the typed client retries once on session_replaced, with the cookie the browser holds then',
    async (t) => {
      const stack = await startStack(t, { deployment })
      const { browser, member } = await signedIn(stack, 2)
      const staleTab = withCookieOf(stack, browser)
      t.equal((await switchAccount(stack, browser, member.accounts[1]?.id)).status, 200)
      let sent = 0
      // The first send left with the old cookie; the retry carries the browser's current one.
      const bff = createBffClient(stack.bff, {
        fetch: (input, init) => (sent++ === 0 ? staleTab : browser).fetch(String(input), init),
      })
      t.equal((await bff.getSession()).activeAccount.id, member.accounts[1]?.id)
      t.equal(sent, 2, 'sent twice')
      let stale = 0
      const stuck = createBffClient(stack.bff, {
        fetch: (input, init) => {
          stale++
          return staleTab.fetch(String(input), init)
        },
      })
      await t.rejects(stuck.getSession(), { code: 'session_replaced' })
      t.equal(stale, 2, 'and only once again')
    },
  )

  t.test('an ended id gets its cookie expired, with the attributes it was set with', async (t) => {
    const stack = await startStack(t, { deployment })
    const { browser } = await signedIn(stack, 1)
    const old = withCookieOf(stack, browser)
    t.equal((await api(stack, browser, '/auth/logout', { method: 'POST' })).status, 204)
    for (const path of ['/api/epcc/v2/carts', '/session']) {
      const stale = withCookieOf(stack, old)
      const response = await api(stack, stale, path)
      t.equal(response.status, 401, path)
      t.equal(await errorOf(response), path === '/session' ? 'unauthenticated' : 'session_expired', path)
      t.equal(sessionCookieLines(stack, response).length, 1, `${path}: the cookie is expired`)
      t.equal(
        stale.cookie(cookieHost(stack), sessionCookie(stack)),
        undefined,
        `${path}: the browser dropped it`,
      )
      // With the stale cookie gone, anonymous catalogue browsing works again.
      t.equal(
        (await api(stack, stale, '/api/epcc/catalog/products')).status,
        200,
        `${path}: then browsing works`,
      )
    }
  })

  t.test('logout logs out whatever its body and Content-Type', async (t) => {
    const stack = await startStack(t, { deployment })
    const bodies: Array<[string, RequestInit]> = [
      ['no body', {}],
      ['JSON, empty', { headers: { 'content-type': 'application/json' }, body: '' }],
      ['JSON {}', { headers: { 'content-type': 'application/json' }, body: '{}' }],
      ['JSON, broken', { headers: { 'content-type': 'application/json' }, body: '{"scope":' }],
      ['a form', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' }],
      ['text', { headers: { 'content-type': 'text/plain' }, body: 'bye' }],
      ['an unparsable Content-Type', { headers: { 'content-type': ';;;==' }, body: 'x' }],
      [
        'a body over 1 KiB',
        { headers: { 'content-type': 'application/json' }, body: `"${'x'.repeat(4096)}"` },
      ],
    ]
    for (const [name, init] of bodies) {
      const { browser } = await signedIn(stack, 1)
      const old = withCookieOf(stack, browser)
      const response = await api(stack, browser, '/auth/logout', { method: 'POST', ...init })
      t.equal(response.status, 204, name)
      t.equal(sessionCookieLines(stack, response).length, 1, `${name}: the cookie is expired`)
      t.equal((await api(stack, old, '/session')).status, 401, `${name}: the session is gone`)
    }
  })

  t.test('nothing outlives its session: record and tokens expire at the idle deadline', async (t) => {
    const stack = await startStack(t, { deployment, env: { SESSION_IDLE_TIMEOUT_S: '2' } })
    const { browser } = await signedIn(stack, 1)
    t.equal(await stack.countKeys('vault:'), 1)
    t.equal(await stack.countKeys('sess:'), 1)
    await sleep(2300)
    t.equal(await stack.countKeys('vault:'), 0, 'the tokens are gone from the store')
    t.equal(await stack.countKeys('sess:'), 0, 'and the record')
    t.equal((await api(stack, browser, '/session')).status, 401)
  })

  t.test('a pre-login browser keeps its pending login while a stale cookie is refused', async (t) => {
    const stack = await startStack(t, { deployment })
    const browser = new Browser()
    const start = await browser.fetch(`${stack.bff}/auth/login`)
    t.equal(start.status, 302)
    t.equal(sessionCookieLines(stack, start).length, 1, 'the login sets the cookie')
    const proxied = await api(stack, browser, '/api/epcc/catalog/products')
    t.equal(proxied.status, 200, 'anonymous browsing goes on while a login is pending')
    t.same(sessionCookieLines(stack, proxied), [])
  })
})
