import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { Browser } from './support/browser.js'
import { api, login, signedIn, tokenCalls } from './support/flows.js'
import { FRONTEND, LogCapture, SESSION_SECRET, type Stack, secretsSeen, startStack } from './support/stack.js'

/** Store tokens the BFF fetched from EPCC. */
const tokenFetches = (stack: Stack) => stack.sim.calls('POST', '/oauth/access_token').length
const errorLanding = (code: string) => `${FRONTEND}/login?error=${code}`
/** The switch calls that reached EPCC: renewals (and page reads) with the current account token. */
const renewals = (stack: Stack) => tokenCalls(stack)

function noSecretLogged(t: Test, stack: Stack): void {
  for (const secret of secretsSeen(stack.sim)) t.notOk(stack.logs.text.includes(secret), 'a token in the log')
}

t.test('the store token heals', async (t) => {
  t.test('its expiry is counted on our clock from expires_in, whatever EPCC says `expires` is', async (t) => {
    const stack = await startStack(t)
    // EPCC's clock two hours behind ours: its absolute `expires` is in our past from the start.
    stack.sim.clock.advance(-7200)
    stack.sim.revokeStoreTokens()
    for (let i = 0; i < 5; i++) {
      t.equal((await api(stack, new Browser(), '/api/epcc/catalog/products')).status, 200)
    }
    t.equal(tokenFetches(stack), 2, 'the first token, and one after the revocation: not one per call')
  })

  t.test('a revoked token: the proxy takes a new one and retries once', async (t) => {
    const stack = await startStack(t)
    const before = tokenFetches(stack)
    stack.sim.revokeStoreTokens()
    const response = await api(stack, new Browser(), '/api/epcc/catalog/products')
    t.equal(response.status, 200)
    t.equal(tokenFetches(stack) - before, 1)
    t.equal(stack.sim.calls('GET', '/catalog/products').length, 2, 'refused once, then answered')
  })

  t.test('a burst of anonymous 401s for an account-only path costs at most one token fetch', async (t) => {
    const stack = await startStack(t)
    const before = tokenFetches(stack)
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => api(stack, new Browser(), '/api/epcc/v2/carts')),
    )
    t.same(
      responses.map((r) => r.status),
      Array(20).fill(401),
      "EPCC's answer passes through",
    )
    for (let i = 0; i < 10; i++) {
      t.equal((await api(stack, new Browser(), '/api/epcc/v2/carts')).status, 401)
    }
    t.ok(tokenFetches(stack) - before <= 1, `${tokenFetches(stack) - before} token fetches`)
    t.equal((await api(stack, new Browser(), '/api/epcc/catalog/products')).status, 200, 'the token works')
  })

  t.test('a login after a revocation: that one fails, the next one uses a new token', async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Ida', email: 'ida@example.com', accounts: 1 })
    stack.sim.revokeStoreTokens()
    const before = tokenFetches(stack)
    const first = await login(stack, new Browser(), member.id)
    t.equal(first.location, errorLanding('login_failed'), 'the code exchange is never repeated')
    t.equal(stack.sim.calls('POST', '/v2/account-members/tokens').length, 1)
    const second = await login(stack, new Browser(), member.id)
    t.equal(second.location, FRONTEND)
    t.equal(tokenFetches(stack) - before, 1, 'one new store token')
    noSecretLogged(t, stack)
  })

  t.test('the realm refresh after a revocation takes a new token and succeeds', async (t) => {
    const stack = await startStack(t)
    stack.sim.revokeStoreTokens()
    const before = tokenFetches(stack)
    await t.resolves(stack.app.realm.refresh())
    t.equal(tokenFetches(stack) - before, 1)
    t.equal((await fetch(`${stack.bff}/readyz`)).status, 200)
  })

  t.test("a renewal refused for the store token keeps the member's session", async (t) => {
    const stack = await startStack(t, { sim: { accountTokenTtlS: 8 } })
    const { browser } = await signedIn(stack, 2)
    const session = (await (await api(stack, browser, '/session')).json()) as { expiresAt: string }
    // Renewal comes due in the last quarter of the token's life.
    await sleep(Math.max(0, Date.parse(session.expiresAt) - 1500 - Date.now()))
    stack.sim.revokeStoreTokens()
    stack.sim.clearLog()
    const response = await api(stack, browser, '/api/epcc/v2/carts')
    t.equal(response.status, 200, 'the session lives on')
    const attempts = renewals(stack)
    t.equal(attempts.length, 2, 'refused once for the store token, then renewed with a new one')
    t.equal(attempts[1]?.status, 201)
    t.equal(tokenFetches(stack), 1)
    t.equal((await api(stack, browser, '/session')).status, 200)
    noSecretLogged(t, stack)
  })
})

t.test('the circuit breaker judges only our own calls', async (t) => {
  t.test("the storefront's 4xx, 429 and 5xx pass through and count for nothing", async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Jo', email: 'jo@example.com', accounts: 1 })
    stack.sim.fault({ path: '/catalog/products', kind: 'rate-limit', retryAfterS: 7, times: 6 })
    for (let i = 0; i < 6; i++) {
      const response = await api(stack, new Browser(), '/api/epcc/catalog/products')
      t.equal(response.status, 429)
      t.equal(response.headers.get('retry-after'), '7')
    }
    stack.sim.fault({ path: '/catalog/products', kind: 'html5xx', status: 503, times: 6 })
    for (let i = 0; i < 6; i++) {
      t.equal((await api(stack, new Browser(), '/api/epcc/catalog/products')).status, 503)
    }
    for (let i = 0; i < 6; i++) {
      t.equal((await api(stack, new Browser(), '/api/epcc/v2/carts')).status, 401)
    }
    t.equal((await login(stack, new Browser(), member.id)).location, FRONTEND, 'logins work')
    t.match(await (await fetch(`${stack.bff}/metrics`)).text(), /bff_epcc_circuit_open 0/)
  })

  t.test('a throttled token endpoint hit by storefront traffic does not fail logins fast', async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Kai', email: 'kai@example.com', accounts: 1 })
    stack.sim.revokeStoreTokens()
    stack.sim.fault({ path: '/oauth/access_token', kind: 'rate-limit', retryAfterS: 1 })
    for (let i = 0; i < 8; i++) {
      const response = await api(stack, new Browser(), '/api/epcc/catalog/products')
      t.equal(response.status, 502, 'no store token to forward with')
    }
    stack.sim.clearFaults()
    t.match(await (await fetch(`${stack.bff}/metrics`)).text(), /bff_epcc_circuit_open 0/)
    const before = stack.sim.calls('POST', '/v2/account-members/tokens').length
    const result = await login(stack, new Browser(), member.id)
    t.equal(result.location, FRONTEND, 'the next login goes through, not failed fast')
    t.equal(stack.sim.calls('POST', '/v2/account-members/tokens').length, before + 1)
  })
})

t.test('a settings read EPCC refuses explains itself', async (t) => {
  const stack = await startStack(t)
  stack.sim.quirks.rejectImplicitOnSettings = true
  /** A BFF on this store with neither a client secret nor the realm variables (or with `env` added). */
  const bffWithout = async (env: Record<string, string> = {}) => {
    const logs = new LogCapture()
    const config = loadConfig(
      {
        EPCC_BASE_URL: stack.sim.apiUrl,
        EPCC_CLIENT_ID: stack.sim.clientId,
        PUBLIC_URL: 'http://127.0.0.1:9/',
        FRONTEND_URL: FRONTEND,
        SESSION_SECRET,
        EPCC_TIMEOUT_MS: '1500',
        ...env,
      },
      '/nonexistent',
    )
    const app = await buildApp(config, { logStream: logs, loadShedding: false })
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    return { logs, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` }
  }

  t.test('readiness and the log name the variables that fix it', async (t) => {
    const { logs, url } = await bffWithout()
    const ready = await fetch(`${url}/readyz`)
    t.equal(ready.status, 503)
    const body = (await ready.json()) as { reason?: string }
    t.match(body.reason, /refused/)
    for (const name of ['EPCC_CLIENT_SECRET', 'EPCC_ACCOUNT_REALM_ID', 'EPCC_ACCOUNT_CLIENT_ID']) {
      t.match(body.reason, name, `readiness names ${name}`)
      t.match(logs.text, name, `the log names ${name}`)
    }
    t.notMatch(logs.text, /did not answer/, 'EPCC answered: never "did not answer"')

    const browser = new Browser()
    const login = await browser.fetch(`${url}/auth/login`)
    t.equal(login.status, 302)
    t.equal(login.headers.get('location'), errorLanding('upstream_unavailable'))
    const line = logs.entries().find((l) => String(l.msg).startsWith('login not started'))
    t.equal(line?.msg, 'login not started: EPCC refused the realm read')
    t.match(String(line?.err), 'EPCC_CLIENT_SECRET')
    for (const secret of secretsSeen(stack.sim)) t.notOk(logs.text.includes(secret), 'a token in the log')
  })

  t.test('with the realm variables, the settings are not read and the BFF is ready', async (t) => {
    const { url } = await bffWithout({
      EPCC_ACCOUNT_REALM_ID: stack.sim.realmId,
      EPCC_ACCOUNT_CLIENT_ID: stack.sim.settingsClientId,
    })
    const ready = await fetch(`${url}/readyz`)
    t.equal(ready.status, 200)
    t.same(await ready.json(), { status: 'ready', checks: { sessionStore: true, epcc: true } })
  })
})
