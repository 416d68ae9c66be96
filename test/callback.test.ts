import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, login, signedIn, startLogin } from './support/flows.js'
import { FRONTEND, startStack } from './support/stack.js'

const EXCHANGE = ['POST', '/v2/account-members/tokens'] as const
const errorLanding = (code: string) => `${FRONTEND}/login?error=${code}`

t.test('a login lands on returnTo with a new session that shows the member', async (t) => {
  const stack = await startStack(t)
  const member = stack.sim.addMember({
    name: 'Ada',
    email: 'ada@example.com',
    accounts: [{ name: 'Bluefuse' }, { name: 'Acme' }],
  })
  stack.sim.directLogin.memberId = member.id
  const browser = new Browser()
  const callbackUrl = await startLogin(stack, browser, '?returnTo=%2Forders%3Fx%3D1')
  const preLogin = browser.cookie(cookieHost(stack), 'epcc-bff')
  t.ok(preLogin, 'the login start set the session cookie')
  const response = await browser.fetch(callbackUrl)
  t.equal(response.status, 302)
  t.equal(response.headers.get('location'), `${FRONTEND}/orders?x=1`)
  t.equal(response.headers.get('referrer-policy'), 'no-referrer')
  const after = browser.cookie(cookieHost(stack), 'epcc-bff')
  t.ok(after)
  t.not(after, preLogin, 'the session id changed at login')
  t.equal(stack.sim.calls(...EXCHANGE).length, 1, 'one code exchange')

  const session = await api(stack, browser, '/session')
  t.equal(session.status, 200)
  const body = (await session.json()) as Record<string, unknown>
  t.same(body.member, { id: member.id, name: 'Ada', email: 'ada@example.com' })
  t.same(
    body.activeAccount,
    { id: member.accounts[0]?.id, name: 'Bluefuse' },
    'the first account EPCC listed is active',
  )
  t.equal(body.accountCount, 2)
})

t.test('the callback path', async (t) => {
  const stack = await startStack(t)
  const member = stack.sim.addMember({ name: 'Bo', email: 'bo@example.com', accounts: 2 })
  stack.sim.directLogin.memberId = member.id

  t.test('a replayed callback URL makes no second exchange and keeps the session', async (t) => {
    const browser = new Browser()
    const first = await login(stack, browser, member.id)
    t.equal(first.location, FRONTEND)
    const exchanges = stack.sim.calls(...EXCHANGE).length
    const replay = await browser.fetch(first.callbackUrl)
    t.equal(replay.headers.get('location'), errorLanding('login_expired'))
    t.equal(stack.sim.calls(...EXCHANGE).length, exchanges, 'no second exchange')
    t.equal((await api(stack, browser, '/session')).status, 200, 'the session still works')
  })

  t.test(
    'unknown, missing, empty, malformed or duplicated state → login_expired, no EPCC call',
    async (t) => {
      const browser = new Browser()
      const callbackUrl = await startLogin(stack, browser)
      const code = callbackUrl.searchParams.get('code')
      const state = callbackUrl.searchParams.get('state')
      const before = stack.sim.calls(...EXCHANGE).length
      const cases = [
        `code=${code}&state=${'A'.repeat(43)}`,
        `code=${code}`,
        `code=${code}&state=`,
        `code=${code}&state=${state}%0d%0a`,
        `code=${code}&state=${state}&state=${state}`,
        `code=${code}&state[a]=1`,
        '',
      ]
      for (const query of cases) {
        const response = await browser.fetch(`${stack.bff}/oauth2/callback?${query}`)
        t.equal(response.status, 302, query)
        t.equal(response.headers.get('location'), errorLanding('login_expired'), query)
      }
      t.equal(stack.sim.calls(...EXCHANGE).length, before, 'no exchange')
      // The genuine transaction is untouched by all of that.
      const genuine = await browser.fetch(callbackUrl)
      t.equal(genuine.headers.get('location'), FRONTEND)
    },
  )

  t.test(
    "a state issued to another browser is login_expired (login CSRF), the victim's session intact",
    async (t) => {
      const attacker = new Browser()
      const attackerCallback = await startLogin(stack, attacker)
      const victim = (await signedIn(stack)).browser
      const before = stack.sim.calls(...EXCHANGE).length
      const response = await victim.fetch(attackerCallback)
      t.equal(response.headers.get('location'), errorLanding('login_expired'))
      t.equal(stack.sim.calls(...EXCHANGE).length, before)
      t.equal((await api(stack, victim, '/session')).status, 200)
    },
  )

  t.test('IdP errors map to the contract codes with no exchange', async (t) => {
    const cases: Array<[string, string]> = [
      ['error=access_denied&error_description=no', 'access_denied'],
      ['error=login_required', 'access_denied'],
      ['error=consent_required', 'access_denied'],
      ['error=interaction_required', 'access_denied'],
      ['error=server_error', 'upstream_unavailable'],
      ['error=temporarily_unavailable', 'upstream_unavailable'],
      ['error=invalid_scope', 'login_failed'],
      ['error=%0d%0aevil', 'login_failed'],
      ['code=abc&error=access_denied', 'access_denied'],
      ['', 'login_failed'],
    ]
    const browser = new Browser()
    for (const [query, code] of cases) {
      const callbackUrl = await startLogin(stack, browser)
      const state = callbackUrl.searchParams.get('state')
      const before = stack.sim.calls(...EXCHANGE).length
      const response = await browser.fetch(
        `${stack.bff}/oauth2/callback?state=${state}${query ? `&${query}` : ''}`,
      )
      t.equal(response.headers.get('location'), errorLanding(code), query || 'neither code nor error')
      t.equal(stack.sim.calls(...EXCHANGE).length, before, `no exchange for ${query || 'neither'}`)
      // The transaction is used up by the error response.
      const retry = await browser.fetch(callbackUrl)
      t.equal(retry.headers.get('location'), errorLanding('login_expired'))
    }
  })

  t.test('an iss that is not EPCCs issuer is refused before any exchange (RFC 9207)', async (t) => {
    const browser = new Browser()
    const callbackUrl = await startLogin(stack, browser)
    callbackUrl.searchParams.set('iss', 'https://evil.example')
    const before = stack.sim.calls(...EXCHANGE).length
    const response = await browser.fetch(callbackUrl)
    t.equal(response.headers.get('location'), errorLanding('login_failed'))
    t.equal(stack.sim.calls(...EXCHANGE).length, before)
  })

  t.test('HEAD on the callback exchanges nothing', async (t) => {
    const browser = new Browser()
    const callbackUrl = await startLogin(stack, browser)
    const before = stack.sim.calls(...EXCHANGE).length
    const head = await browser.fetch(callbackUrl, { method: 'HEAD' })
    t.equal(head.status, 404)
    t.equal(stack.sim.calls(...EXCHANGE).length, before)
    t.equal((await browser.fetch(callbackUrl)).headers.get('location'), FRONTEND, 'the login still completes')
  })

  t.test('two logins in parallel in one browser both complete', async (t) => {
    const browser = new Browser()
    const [tabA, tabB] = [await startLogin(stack, browser), await startLogin(stack, browser)]
    t.not(tabA.searchParams.get('state'), tabB.searchParams.get('state'))
    const a = await browser.fetch(tabA)
    t.equal(a.headers.get('location'), FRONTEND)
    const afterA = browser.cookie(cookieHost(stack), 'epcc-bff')
    const b = await browser.fetch(tabB)
    t.equal(b.headers.get('location'), FRONTEND)
    t.not(browser.cookie(cookieHost(stack), 'epcc-bff'), afterA, 'a new session id again')
    t.equal((await api(stack, browser, '/session')).status, 200)
  })

  t.test('session fixation: a planted id is not the id after login, and resolves to nothing', async (t) => {
    const attacker = new Browser()
    await attacker.fetch(`${stack.bff}/auth/login`)
    const planted = attacker.cookie(cookieHost(stack), 'epcc-bff')
    t.ok(planted)
    const victim = new Browser()
    victim.setCookie(cookieHost(stack), 'epcc-bff', planted ?? '')
    const result = await login(stack, victim, member.id)
    t.equal(result.location, FRONTEND)
    t.not(victim.cookie(cookieHost(stack), 'epcc-bff'), planted)
    const withPlanted = new Browser()
    withPlanted.setCookie(cookieHost(stack), 'epcc-bff', planted ?? '')
    t.equal((await api(stack, withPlanted, '/session')).status, 401)
  })
})

t.test('EPCC failures at the exchange', async (t) => {
  const stack = await startStack(t)
  const member = stack.sim.addMember({ name: 'Cy', email: 'cy@example.com', accounts: 1 })

  for (const status of [400, 401, 403, 404]) {
    t.test(`EPCC ${status} → login_failed`, async (t) => {
      stack.sim.fault({
        method: 'POST',
        path: '/v2/account-members/tokens',
        kind: 'status',
        status,
        times: 1,
      })
      const result = await login(stack, new Browser(), member.id)
      t.equal(result.location, errorLanding('login_failed'))
    })
  }

  t.test('EPCC 500 with an HTML body, 429, or a reset → upstream_unavailable, never retried', async (t) => {
    // Its own stack: these failures in a row bring the circuit breaker close to opening.
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Cy', email: 'cy@example.com', accounts: 1 })
    const faults = [
      { kind: 'html5xx', status: 500 },
      { kind: 'html5xx', status: 503 },
      { kind: 'rate-limit', retryAfterS: 1 },
      { kind: 'reset' },
    ] as const
    for (const fault of faults) {
      stack.sim.fault({ method: 'POST', path: '/v2/account-members/tokens', times: 1, ...fault })
      const before = stack.sim.calls(...EXCHANGE).length
      const result = await login(stack, new Browser(), member.id)
      t.equal(result.location, errorLanding('upstream_unavailable'), fault.kind)
      t.equal(stack.sim.calls(...EXCHANGE).length, before + 1, `${fault.kind}: exactly one attempt`)
    }
  })

  t.test('a hanging EPCC → upstream_unavailable within the budget', async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Cy', email: 'cy@example.com', accounts: 1 })
    stack.sim.fault({ method: 'POST', path: '/v2/account-members/tokens', kind: 'hang', times: 1 })
    const started = Date.now()
    const result = await login(stack, new Browser(), member.id)
    t.equal(result.location, errorLanding('upstream_unavailable'))
    // EPCC_TIMEOUT_MS is 1500 in the stack: the callback answers near it, not at Node's 300 s default.
    t.ok(Date.now() - started < 5000, 'answered within the budget')
  })

  t.test('a 2xx body without usable tokens → upstream_unavailable', async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Cy', email: 'cy@example.com', accounts: 1 })
    stack.sim.quirks.errorsAsObject = false
    stack.sim.fault({
      method: 'POST',
      path: '/v2/account-members/tokens',
      kind: 'status',
      status: 201,
      times: 1,
    })
    const result = await login(stack, new Browser(), member.id)
    t.equal(result.location, errorLanding('upstream_unavailable'))
  })

  t.test('a member with no account → no_accounts', async (t) => {
    const lonely = stack.sim.addMember({ name: 'Lone', email: 'lone@example.com', accounts: [] })
    const result = await login(stack, new Browser(), lonely.id)
    t.equal(result.location, errorLanding('no_accounts'))
  })

  t.test('quirks: string statuses, "null" next links and no member id still log in', async (t) => {
    Object.assign(stack.sim.quirks, { statusAsString: true, nextAsStringNull: true, omitMemberId: true })
    t.teardown(() =>
      Object.assign(stack.sim.quirks, {
        statusAsString: false,
        nextAsStringNull: false,
        omitMemberId: false,
      }),
    )
    const browser = new Browser()
    const result = await login(stack, browser, member.id)
    t.equal(result.location, FRONTEND)
    const session = (await (await api(stack, browser, '/session')).json()) as { member: { id: string } }
    t.equal(session.member.id, member.id)
    stack.sim.fault({
      method: 'POST',
      path: '/v2/account-members/tokens',
      kind: 'status',
      status: 401,
      times: 1,
    })
    t.equal((await login(stack, new Browser(), member.id)).location, errorLanding('login_failed'))
  })

  t.test('a failed callback leaves the existing session exactly as it was', async (t) => {
    const { browser } = await signedIn(stack)
    const cookie = browser.cookie(cookieHost(stack), 'epcc-bff')
    const before = await (await api(stack, browser, '/session')).json()
    stack.sim.fault({ method: 'POST', path: '/v2/account-members/tokens', kind: 'html5xx', times: 1 })
    const result = await login(stack, browser, member.id)
    t.equal(result.location, errorLanding('upstream_unavailable'))
    t.equal(browser.cookie(cookieHost(stack), 'epcc-bff'), cookie)
    t.same(await (await api(stack, browser, '/session')).json(), before)
  })
})

t.test('a login transaction expires after 10 minutes', async (t) => {
  let now = Date.now()
  const kv = new MemoryKeyValueStore({ now: () => now })
  const stack = await startStack(t, { kv })
  const member = stack.sim.addMember({ name: 'Di', email: 'di@example.com', accounts: 1 })
  stack.sim.directLogin.memberId = member.id
  const browser = new Browser()
  const callbackUrl = await startLogin(stack, browser)
  now += 10 * 60_000 + 1000
  const before = stack.sim.calls(...EXCHANGE).length
  const response = await browser.fetch(callbackUrl)
  t.equal(response.headers.get('location'), errorLanding('login_expired'))
  t.equal(stack.sim.calls(...EXCHANGE).length, before)
})

t.test(
  'a dead EPCC: callbacks fail fast once the circuit opens, and recover when EPCC returns',
  async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Flo', email: 'flo@example.com', accounts: 1 })
    stack.sim.fault({ method: 'POST', path: '/v2/account-members/tokens', kind: 'html5xx', status: 503 })
    for (let i = 0; i < 5; i++) {
      t.equal((await login(stack, new Browser(), member.id)).location, errorLanding('upstream_unavailable'))
    }
    const calls = stack.sim.calls(...EXCHANGE).length
    const result = await login(stack, new Browser(), member.id)
    t.equal(result.location, errorLanding('upstream_unavailable'))
    t.equal(stack.sim.calls(...EXCHANGE).length, calls, 'the open circuit made no EPCC call')
    const metrics = await (await fetch(`${stack.bff}/metrics`)).text()
    t.match(metrics, /bff_epcc_circuit_open 1/)

    stack.sim.clearFaults()
    await new Promise((resolve) => setTimeout(resolve, 10_500))
    t.equal(
      (await login(stack, new Browser(), member.id)).location,
      FRONTEND,
      'EPCC is back: logins work again',
    )
  },
)
