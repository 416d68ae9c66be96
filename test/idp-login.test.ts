import t from 'tap'
import { Browser, idpLogin } from './support/browser.js'
import { api, cookieHost } from './support/flows.js'
import { FRONTEND, secretsSeen, startStack } from './support/stack.js'

t.test('a login through the real IdP form, and no secret in any response or log line', async (t) => {
  const stack = await startStack(t, { sim: { idp: 'real' } })
  const member = stack.sim.addMember({
    name: 'Ida Real',
    email: 'ida@example.com',
    password: 'correct horse',
    accounts: [{ name: 'Bluefuse' }, { name: 'Acme' }],
  })
  const browser = new Browser()
  const bodies: string[] = []

  const start = await browser.fetch(`${stack.bff}/auth/login?returnTo=%2Fcart`)
  t.equal(start.status, 302)
  const isCallback = (u: URL) => u.href.startsWith(`${stack.publicUrl}/oauth2/callback`)
  const callbackUrl = await idpLogin(
    browser,
    start.headers.get('location') ?? '',
    { email: member.email, password: 'correct horse' },
    isCallback,
  )
  const code = callbackUrl.searchParams.get('code') ?? ''
  t.ok(code.length >= 16, 'EPCC issued a code')
  const landing = await browser.fetch(callbackUrl)
  t.equal(landing.status, 302)
  t.equal(landing.headers.get('location'), `${FRONTEND}/cart`)
  bodies.push(await landing.text())

  for (const path of ['/session', '/session/accounts', '/auth/profiles']) {
    const response = await api(stack, browser, path)
    t.equal(response.status, 200, path)
    bodies.push(
      JSON.stringify([...response.headers.entries()].filter(([k]) => k !== 'set-cookie')),
      await response.text(),
    )
  }
  const session = JSON.parse(bodies[2] ?? '{}') as { member?: { email?: string } }
  t.equal(session.member?.email, 'ida@example.com')
  const logout = await api(stack, browser, '/auth/logout', { method: 'POST' })
  bodies.push(await logout.text())

  const cookie = browser.lastSetCookie('epcc-bff') ?? ''
  const sessionId = decodeURIComponent(cookie.split(';')[0]?.split('=')[1] ?? '').split('.')[0] ?? ''
  const secrets = [...secretsSeen(stack.sim), code]
  if (sessionId) secrets.push(sessionId)
  t.ok(
    secrets.length >= 4,
    `${secrets.length} secrets to look for (implicit token, account token, code, verifier)`,
  )
  t.ok(
    stack.sim.log.some((r) => r.path === '/v2/account-members/tokens'),
    'the exchange happened',
  )
  const logs = stack.logs.text
  t.ok(stack.logs.lines.length > 5, 'the BFF logged the run')
  for (const secret of secrets) {
    t.notOk(logs.includes(secret), `log lines do not contain ${secret.slice(0, 6)}…`)
    t.notOk(
      bodies.some((b) => b.includes(secret)),
      `responses do not contain ${secret.slice(0, 6)}…`,
    )
  }
  t.notMatch(logs, /"url":"[^"]*\?/, 'no request URL with its query string')
  t.ok(
    stack.logs.entries().some((e) => e.msg === 'login succeeded' && e.memberId === member.id),
    'the login is an audit event with the member id',
  )
})

t.test('a user the IdP refuses comes back with access_denied, and no exchange', async (t) => {
  const stack = await startStack(t, { sim: { idp: 'real' } })
  stack.sim.addMember({ name: 'Rex', email: 'rex@example.com', password: 'pw', accounts: 1 })
  stack.sim.refuseLogin('rex@example.com')
  const browser = new Browser()
  const start = await browser.fetch(`${stack.bff}/auth/login`)
  const isCallback = (u: URL) => u.href.startsWith(`${stack.publicUrl}/oauth2/callback`)
  const callbackUrl = await idpLogin(
    browser,
    start.headers.get('location') ?? '',
    { email: 'rex@example.com', password: 'pw' },
    isCallback,
  )
  t.equal(callbackUrl.searchParams.get('error'), 'access_denied')
  const landing = await browser.fetch(callbackUrl)
  t.equal(landing.headers.get('location'), `${FRONTEND}/login?error=access_denied`)
  t.equal(stack.sim.calls('POST', '/v2/account-members/tokens').length, 0)
  t.equal((await api(stack, browser, '/session')).status, 401)
  t.ok(browser.cookie(cookieHost(stack), 'epcc-bff'), 'the pre-login session is kept as it was')
})
