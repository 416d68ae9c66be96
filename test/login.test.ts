import t from 'tap'
import { Browser } from './support/browser.js'
import { cookieHost } from './support/flows.js'
import { FRONTEND, startStack } from './support/stack.js'

t.test('GET /auth/login', async (t) => {
  const stack = await startStack(t)
  const [profile] = stack.sim.profiles

  t.test("redirects to the profile's authorization endpoint as EPCC gave it, with PKCE S256", async (t) => {
    const browser = new Browser()
    const response = await browser.fetch(`${stack.bff}/auth/login?prompt=login&ui_locales=de`)
    t.equal(response.status, 302)
    t.equal(response.headers.get('cache-control'), 'no-store')
    const location = new URL(response.headers.get('location') ?? '')
    t.equal(location.origin, new URL(stack.sim.authUrl).origin, 'the authorization host, not the API host')
    t.equal(
      location.pathname,
      `/oidc-idp/login/stores/${stack.sim.storeId}/authentication-realms/${stack.sim.realmId}`,
    )
    const q = location.searchParams
    t.equal(q.get('elasticpath_commerce_cloud_profile_id'), profile?.id, "the endpoint's own query is kept")
    t.equal(q.get('response_type'), 'code')
    t.equal(q.get('scope'), 'openid email')
    t.equal(q.get('client_id'), stack.sim.settingsClientId)
    t.equal(q.get('redirect_uri'), `${stack.publicUrl}/oauth2/callback`)
    t.match(q.get('state'), /^[A-Za-z0-9_-]{43}$/)
    t.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
    t.equal(q.get('code_challenge_method'), 'S256')
    t.equal(q.get('prompt'), 'login')
    t.equal(q.get('ui_locales'), 'de')
    t.notOk(q.has('nonce'))

    const cookie = browser.lastSetCookie('epcc-bff') ?? ''
    t.match(cookie, /; HttpOnly/)
    t.match(cookie, /; Path=\//)
    t.match(cookie, /; SameSite=Lax/)
    t.notMatch(cookie, /Domain=/i)
    t.notMatch(cookie, /Secure/i, 'not Secure for an http PUBLIC_URL')
  })

  t.test('two logins from one browser get their own state and challenge in one session', async (t) => {
    const browser = new Browser()
    const first = new URL((await browser.fetch(`${stack.bff}/auth/login`)).headers.get('location') ?? '')
    const cookie = browser.cookie(cookieHost(stack), 'epcc-bff')
    const second = new URL((await browser.fetch(`${stack.bff}/auth/login`)).headers.get('location') ?? '')
    t.not(first.searchParams.get('state'), second.searchParams.get('state'))
    t.not(first.searchParams.get('code_challenge'), second.searchParams.get('code_challenge'))
    t.equal(browser.cookie(cookieHost(stack), 'epcc-bff'), cookie, 'same browser session')
  })

  t.test('Host and X-Forwarded-Host never change redirect_uri', async (t) => {
    const response = await fetch(`${stack.bff}/auth/login`, {
      redirect: 'manual',
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
    })
    const location = new URL(response.headers.get('location') ?? '')
    t.equal(location.searchParams.get('redirect_uri'), `${stack.publicUrl}/oauth2/callback`)
  })

  t.test('an unknown profile is 400 unknown_profile', async (t) => {
    const response = await fetch(`${stack.bff}/auth/login?profile=nope`, { redirect: 'manual' })
    t.equal(response.status, 400)
    t.same(await response.json(), { error: 'unknown_profile', message: 'No OIDC profile with that id.' })
  })

  t.test('malformed queries are 400 bad_request, never a 500', async (t) => {
    for (const query of [
      'profile=a&profile=b',
      'prompt=%0d%0a',
      'ui_locales=%3Cscript%3E',
      `profile=${'x'.repeat(200)}`,
    ]) {
      const response = await fetch(`${stack.bff}/auth/login?${query}`, { redirect: 'manual' })
      t.equal(response.status, 400, query)
      t.equal(((await response.json()) as { error: string }).error, 'bad_request')
    }
  })

  t.test('a returnTo that is not allowed lands on FRONTEND_URL after login', async (t) => {
    // Checked end to end in callback.test.ts; here: never a 500 and never an off-site target stored.
    for (const returnTo of [
      '//evil.example',
      'https://evil.example',
      '/\\evil',
      'javascript:alert(1)',
      '%0d%0a',
    ]) {
      const response = await fetch(`${stack.bff}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, {
        redirect: 'manual',
      })
      t.equal(response.status, 302, returnTo)
    }
  })
})

t.test('a realm with several profiles needs ?profile=', async (t) => {
  const stack = await startStack(t, { sim: { profiles: [{ name: 'Acme SSO' }, { name: 'Partner SSO' }] } })
  const response = await fetch(`${stack.bff}/auth/login`, { redirect: 'manual' })
  t.equal(response.status, 400)
  t.equal(((await response.json()) as { error: string }).error, 'profile_required')
  const second = stack.sim.profiles[1]
  const chosen = await fetch(`${stack.bff}/auth/login?profile=${second?.id}`, { redirect: 'manual' })
  t.equal(chosen.status, 302)
  t.equal(
    new URL(chosen.headers.get('location') ?? '').searchParams.get('elasticpath_commerce_cloud_profile_id'),
    second?.id,
  )
  const profiles = await fetch(`${stack.bff}/auth/profiles`, { headers: { 'x-csrf': '1' } })
  t.same(await profiles.json(), { data: stack.sim.profiles.map((p) => ({ id: p.id, name: p.name })) })
})

t.test('an https PUBLIC_URL behind TRUST_PROXY gets the __Host- cookie, Secure', async (t) => {
  const stack = await startStack(t, { env: { TRUST_PROXY: 'true' } })
  // The stack's PUBLIC_URL is http; rebuild the same app as an https deployment behind a TLS proxy.
  const replica = await stack.replica({ PUBLIC_URL: stack.publicUrl.replace('http:', 'https:') })
  const response = await fetch(`${replica.bff}/auth/login`, {
    redirect: 'manual',
    headers: { 'x-forwarded-proto': 'https' },
  })
  t.equal(response.status, 302)
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('__Host-epcc-bff=')) ?? ''
  t.match(cookie, /; Path=\//)
  t.match(cookie, /; HttpOnly/)
  t.match(cookie, /; Secure/)
  t.match(cookie, /; SameSite=Lax/)
  t.notMatch(cookie, /Domain=/i)
})

t.test('routes are served under the path of PUBLIC_URL', async (t) => {
  const stack = await startStack(t, { basePath: '/bff' })
  t.equal((await fetch(`${stack.bff}/healthz`)).status, 200)
  t.equal((await fetch(`${stack.bff}/auth/login`, { redirect: 'manual' })).status, 302)
  const root = new URL(stack.bff).origin
  t.equal((await fetch(`${root}/healthz`)).status, 404)
  const member = stack.sim.addMember({ name: 'Ed', email: 'ed@example.com', accounts: 1 })
  stack.sim.directLogin.memberId = member.id
  const browser = new Browser()
  const start = await browser.fetch(`${stack.bff}/auth/login`)
  const callback = await browser.follow(start.headers.get('location') ?? '', {
    stopAt: (u) => u.pathname === '/bff/oauth2/callback',
  })
  const done = await browser.fetch(callback.url)
  t.equal(done.headers.get('location'), FRONTEND)
})
