import { connect } from 'node:net'
import t from 'tap'
import { MemoryKeyValueStore, StoreUnavailableError } from '../src/session/kv.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, login, signedIn, startLogin, switchAccount } from './support/flows.js'
import { FRONTEND, secretsSeen, startStack } from './support/stack.js'

/** Writes `bytes` on a fresh connection and returns everything the server answers until it closes. */
function rawExchange(base: string, bytes: string): Promise<string> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let answer = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      answer += chunk
    })
    socket.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' ? resolve(answer) : reject(err),
    )
    socket.on('close', () => resolve(answer))
    socket.write(bytes)
  })
}

/** The memory store, which can be taken down: every call then fails as an unreachable Redis does. */
class FlakyStore extends MemoryKeyValueStore {
  down = false
  private check(): void {
    if (this.down) throw new StoreUnavailableError(new Error('connection refused'))
  }
  override async get(key: string) {
    this.check()
    return super.get(key)
  }
  override async set(key: string, value: string, ttlMs: number) {
    this.check()
    return super.set(key, value, ttlMs)
  }
  override async take(key: string) {
    this.check()
    return super.take(key)
  }
  override async delete(key: string) {
    this.check()
    return super.delete(key)
  }
}

t.test('a value of the wrong JSON type is 400 bad_request and switches nothing', async (t) => {
  const stack = await startStack(t)
  const { browser } = await signedIn(stack, 2)
  const accounts = (await (await api(stack, browser, '/session/accounts')).json()) as {
    data: Array<{ id: string }>
  }
  const other = accounts.data[1]?.id ?? ''
  const before = (await (await api(stack, browser, '/session')).json()) as { activeAccount: { id: string } }
  t.not(before.activeAccount.id, other, 'the second account is not the active one')

  for (const value of [[other], [other, other], { 0: other }, 12345678, true, null]) {
    const body = JSON.stringify({ accountId: value })
    const response = await api(stack, browser, '/session/active-account', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body,
    })
    t.equal(response.status, 400, body)
    t.equal(((await response.json()) as { error: string }).error, 'bad_request', body)
  }
  const after = (await (await api(stack, browser, '/session')).json()) as { activeAccount: { id: string } }
  t.equal(after.activeAccount.id, before.activeAccount.id, 'the active account is unchanged')
  t.equal((await switchAccount(stack, browser, other)).status, 200, 'the same id as a string switches')
})

t.test('LOGIN_ERROR_PATH=/登录 is percent-encoded at start; every failed login lands there', async (t) => {
  const stack = await startStack(t, { env: { LOGIN_ERROR_PATH: '/登录' } })
  const browser = new Browser()
  const callbackUrl = await startLogin(stack, browser)
  callbackUrl.searchParams.set('state', 'x'.repeat(43))
  const failed = await browser.fetch(callbackUrl)
  t.equal(failed.status, 302)
  t.equal(failed.headers.get('location'), `${FRONTEND}/%E7%99%BB%E5%BD%95?error=login_expired`)
  const refused = await browser.fetch(`${stack.bff}/oauth2/callback?error=access_denied`)
  t.equal(refused.status, 302)
  t.equal(refused.headers.get('location'), `${FRONTEND}/%E7%99%BB%E5%BD%95?error=login_expired`)
})

t.test('a store outage during a login or its callback lands on the error page', async (t) => {
  const kv = new FlakyStore()
  const stack = await startStack(t, { kv })
  const member = stack.sim.addMember({ name: 'Otto', email: 'otto@example.com', accounts: 1 })
  stack.sim.directLogin.memberId = member.id
  const browser = new Browser()
  const callbackUrl = await startLogin(stack, browser)

  kv.down = true
  const landing = `${FRONTEND}/login?error=upstream_unavailable`
  const start = await browser.fetch(`${stack.bff}/auth/login`)
  t.equal(start.status, 302, 'login start')
  t.equal(start.headers.get('location'), landing)
  const callback = await browser.fetch(callbackUrl)
  t.equal(callback.status, 302, 'callback')
  t.equal(callback.headers.get('location'), landing)
  t.notOk(
    stack.sim.log.some((r) => r.path === '/v2/account-members/tokens'),
    'no code was exchanged while the store was down',
  )
  const apiCall = await api(stack, browser, '/session')
  t.equal(apiCall.status, 503, 'the API still answers JSON')
  t.equal(((await apiCall.json()) as { error: string }).error, 'session_store_unavailable')

  kv.down = false
  const retried = await browser.fetch(callbackUrl)
  t.equal(
    retried.headers.get('location'),
    `${FRONTEND}`,
    'the same callback completes once the store is back',
  )
})

t.test('at LOG_LEVEL=trace no secret of a whole run reaches the log', async (t) => {
  const stack = await startStack(t, { env: { LOG_LEVEL: 'trace' } })
  const { member, browser, result } = await signedIn(stack, 2)
  const host = cookieHost(stack)
  const secrets = [
    result.callbackUrl.searchParams.get('code') ?? '',
    result.callbackUrl.searchParams.get('state') ?? '',
  ]
  const cookieOf = (b: Browser) => b.cookie(host, 'epcc-bff') ?? ''
  const sessionIdOf = (cookie: string) => decodeURIComponent(cookie).split('.')[0] ?? ''
  secrets.push(cookieOf(browser), sessionIdOf(cookieOf(browser)))

  // The API, an account switch (a new session id), the proxy, a failed callback, a pending login.
  t.equal((await api(stack, browser, '/session')).status, 200)
  const accounts = (await (await api(stack, browser, '/session/accounts')).json()) as {
    data: Array<{ id: string }>
  }
  t.equal((await switchAccount(stack, browser, accounts.data[1]?.id)).status, 200)
  secrets.push(cookieOf(browser), sessionIdOf(cookieOf(browser)))
  t.equal((await api(stack, browser, '/api/epcc/v2/carts/c1')).status < 500, true, 'a proxied call')
  const second = new Browser()
  const pending = await startLogin(stack, second)
  secrets.push(pending.searchParams.get('code') ?? '', pending.searchParams.get('state') ?? '')
  secrets.push(cookieOf(second), sessionIdOf(cookieOf(second)))
  const again = await login(stack, new Browser(), member.id)
  secrets.push(again.callbackUrl.searchParams.get('code') ?? '')

  // What Node's parser refuses: a malformed header after the cookie and a callback URL, and a cookie bomb.
  const cookie = `epcc-bff=${encodeURIComponent(cookieOf(browser))}`
  const malformed = await rawExchange(
    stack.bff,
    `GET /oauth2/callback?code=${secrets[0]}&state=${secrets[1]} HTTP/1.1\r\nHost: a\r\nCookie: ${cookie}\r\nno colon here\r\n\r\n`,
  )
  t.match(malformed, /^HTTP\/1\.1 400 /, 'a malformed request is 400')
  t.match(malformed, /"error":"bad_request"/)
  const bomb = await rawExchange(
    stack.bff,
    `GET /session HTTP/1.1\r\nHost: a\r\nX-CSRF: 1\r\nCookie: ${cookie}; ${'crumb=x; '.repeat(2500)}\r\n\r\n`,
  )
  t.match(bomb, /^HTTP\/1\.1 431 /, 'a cookie bomb is 431')
  t.match(bomb, /"error":"headers_too_large"/)

  t.equal((await api(stack, browser, '/auth/logout', { method: 'POST' })).status, 204)
  secrets.push(...secretsSeen(stack.sim))
  const found = secrets.filter((s) => s.length >= 16)
  t.ok(found.length >= 12, `${found.length} secrets to look for`)

  const entries = stack.logs.entries()
  t.equal(stack.app.log.level, 'trace', 'the run logged at trace')
  const clientErrors = entries.filter((e) => e.msg === 'client error')
  t.same(
    clientErrors.map((e) => e.kind),
    ['HPE_INVALID_HEADER_TOKEN', 'HPE_HEADER_OVERFLOW'],
    'each refused request is logged by kind',
  )
  t.notMatch(stack.logs.text, /rawPacket|"data":\[/, 'no raw request bytes')
  for (const secret of found) {
    t.notOk(stack.logs.text.includes(secret), `the log does not contain ${secret.slice(0, 6)}…`)
  }
})
