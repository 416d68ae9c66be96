import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { freePort } from '../dev/net.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, login, signedIn, startLogin } from './support/flows.js'
import { FRONTEND, SESSION_SECRET, secretsSeen, startStack } from './support/stack.js'

// Never skipped: CI starts Redis, and a missing server fails the run.
const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'
const OLD = 'old-rotation-secret-0123456789abcdefghij'
const NEW = 'new-rotation-secret-0123456789abcdefghij'

async function redisValues(pattern = 'epcc-bff:*'): Promise<string[]> {
  const redis = new Redis(REDIS_URL)
  try {
    const keys = await redis.keys(pattern)
    const values = keys.length ? await redis.mget(...keys) : []
    return [...keys, ...values.filter((v): v is string => v !== null)]
  } finally {
    redis.disconnect()
  }
}

t.test('sessions in Redis: a login works and nothing secret is stored in clear', async (t) => {
  const stack = await startStack(t, { env: { REDIS_URL } })
  const member = stack.sim.addMember({ name: 'Rita', email: 'rita@example.com', accounts: 3 })
  const browser = new Browser()
  const result = await login(stack, browser, member.id)
  t.equal(result.location, FRONTEND)
  t.equal((await api(stack, browser, '/session')).status, 200)
  // A second login left pending, so that a transaction (with its verifier) is in Redis too.
  await startLogin(stack, browser)

  const stored = (await redisValues()).join('\n')
  const secrets = [...secretsSeen(stack.sim), result.callbackUrl.searchParams.get('code') ?? '']
  t.ok(secrets.length >= 4)
  for (const secret of secrets) t.notOk(stored.includes(secret), `${secret.slice(0, 6)}… not in Redis`)
  t.notMatch(stored, /rita@example\.com|"auth"|"tokens"/, 'no record readable in clear')
  t.match(stored, /^v1\./m, 'values are sealed envelopes')
})

t.test('secret rotation against Redis: [OLD] → [NEW,OLD] keeps working → [NEW] still works', async (t) => {
  const stack = await startStack(t, { env: { REDIS_URL, SESSION_SECRET: OLD } })
  const { browser } = await signedIn(stack, 2)
  const host = cookieHost(stack)
  const signedWithOld = browser.cookie(host, 'epcc-bff') ?? ''

  const rotated = await stack.replica({ SESSION_SECRET: `${NEW},${OLD}` })
  browser.setCookie(new URL(rotated.bff).host, 'epcc-bff', signedWithOld)
  const viaRotated = await browser.fetch(`${rotated.bff}/session`, { headers: { 'x-csrf': '1' } })
  t.equal(viaRotated.status, 200, 'the old-signed cookie still works')
  const reissued = viaRotated.headers.getSetCookie().find((c) => c.startsWith('epcc-bff=')) ?? ''
  t.notMatch(reissued, /Max-Age=0|Expires=Thu, 01 Jan 1970/, 'not cleared (the @fastify/session bug)')
  const signedWithNew = decodeURIComponent(reissued.split(';')[0]?.slice('epcc-bff='.length) ?? '')
  t.ok(signedWithNew)
  t.not(signedWithNew, decodeURIComponent(signedWithOld), 're-signed')
  t.equal(signedWithNew.split('.')[0], decodeURIComponent(signedWithOld).split('.')[0], 'same session id')

  const newOnly = await stack.replica({ SESSION_SECRET: NEW })
  const fresh = new Browser()
  fresh.setCookie(new URL(newOnly.bff).host, 'epcc-bff', encodeURIComponent(signedWithNew))
  const afterDrop = await fresh.fetch(`${newOnly.bff}/session`, { headers: { 'x-csrf': '1' } })
  t.equal(afterDrop.status, 200, 'still signed in once OLD is dropped')
  const accounts = await fresh.fetch(`${newOnly.bff}/session/accounts`, { headers: { 'x-csrf': '1' } })
  t.equal(accounts.status, 200, 'the tokens were re-sealed with NEW too')

  const stale = new Browser()
  stale.setCookie(new URL(newOnly.bff).host, 'epcc-bff', signedWithOld)
  t.equal((await stale.fetch(`${newOnly.bff}/session`, { headers: { 'x-csrf': '1' } })).status, 401)
})

t.test('two replicas on one Redis', async (t) => {
  const stack = await startStack(t, { env: { REDIS_URL } })
  const b = await stack.replica()
  const a = { bff: stack.bff }
  const member = stack.sim.addMember({ name: 'Rep', email: 'rep@example.com', accounts: 3 })
  stack.sim.directLogin.memberId = member.id
  const on = (replica: { bff: string }, path: string, init: RequestInit = {}) =>
    browser.fetch(`${replica.bff}${path}`, {
      ...init,
      headers: { 'x-csrf': '1', ...(init.headers as object) },
    })
  const browser = new Browser()
  // The cookie jar is per host:port; replicas behind one load balancer share a host. Copy it across.
  const sync = () =>
    browser.setCookie(new URL(b.bff).host, 'epcc-bff', browser.cookie(cookieHost(stack), 'epcc-bff') ?? '')
  const syncBack = () =>
    browser.setCookie(cookieHost(stack), 'epcc-bff', browser.cookie(new URL(b.bff).host, 'epcc-bff') ?? '')

  const callbackUrl = await startLogin(stack, browser)
  sync()
  const finished = await browser.fetch(callbackUrl.href.replace(stack.bff, b.bff))
  t.equal(finished.headers.get('location'), FRONTEND, 'login started on A, finished on B')
  syncBack()
  t.equal((await on(a, '/session')).status, 200, 'session read on A')

  sync()
  const switched = await on(b, '/session/active-account', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accountId: member.accounts[2]?.id }),
  })
  t.equal(switched.status, 200)
  syncBack()
  const seenOnA = (await (await on(a, '/session')).json()) as { activeAccount: { id: string } }
  t.equal(seenOnA.activeAccount.id, member.accounts[2]?.id, 'switch on B visible on A')

  const cookie = browser.cookie(cookieHost(stack), 'epcc-bff') ?? ''
  t.equal((await on(a, '/auth/logout', { method: 'POST' })).status, 204)
  const onB = new Browser()
  onB.setCookie(new URL(b.bff).host, 'epcc-bff', cookie)
  t.equal(
    (await onB.fetch(`${b.bff}/session`, { headers: { 'x-csrf': '1' } })).status,
    401,
    'logout on A effective on B',
  )
})

t.test('concurrent switches on two replicas leave one consistent session', async (t) => {
  const stack = await startStack(t, { env: { REDIS_URL } })
  const b = await stack.replica()
  const { browser, member } = await signedIn(stack, 3)
  const cookie = browser.cookie(cookieHost(stack), 'epcc-bff') ?? ''
  const put = (bff: string, accountId: string | undefined) =>
    fetch(`${bff}/session/active-account`, {
      method: 'PUT',
      headers: { 'x-csrf': '1', 'content-type': 'application/json', cookie: `epcc-bff=${cookie}` },
      body: JSON.stringify({ accountId }),
    })
  const [ra, rb] = await Promise.all([
    put(stack.bff, member.accounts[1]?.id),
    put(b.bff, member.accounts[2]?.id),
  ])
  const statuses = [ra.status, rb.status].sort()
  t.same(statuses, [200, 401], 'one switch wins, the other finds its session id gone')
  const winner = ra.status === 200 ? ra : rb
  const body = (await winner.json()) as { activeAccount: { id: string } }
  const winnerCookie = winner.headers.getSetCookie()[0]?.split(';')[0] ?? ''
  const loser = ra.status === 200 ? rb : ra
  t.same(
    loser.headers.getSetCookie().filter((c) => !/Expires=Thu, 01 Jan 1970/.test(c)),
    [],
    'the refused switch sets no new session',
  )
  for (const bff of [stack.bff, b.bff]) {
    const seen = await fetch(`${bff}/session`, { headers: { 'x-csrf': '1', cookie: winnerCookie } })
    t.equal(
      ((await seen.json()) as { activeAccount: { id: string } }).activeAccount.id,
      body.activeAccount.id,
    )
  }
  const old = await fetch(`${stack.bff}/session`, {
    headers: { 'x-csrf': '1', cookie: `epcc-bff=${cookie}` },
  })
  t.equal(old.status, 401)
})

/** A throw-away redis-server on its own port, so the test can stop and restart it. */
function startRedis(port: number): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  )
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await sleep(100)
  }
  return false
}

t.test(
  'while Redis is down: 503 session_store_unavailable fast, /readyz 503, /healthz 200; then it recovers',
  async (t) => {
    const port = await freePort()
    let redis = startRedis(port)
    t.teardown(() => redis.kill('SIGKILL'))
    const url = `redis://127.0.0.1:${port}`
    const stack = await startStack(t, { env: { REDIS_URL: url } })
    t.ok(await until(async () => (await fetch(`${stack.bff}/readyz`)).status === 200), 'ready with Redis up')
    const { browser } = await signedIn(stack, 1)

    redis.kill('SIGKILL')
    await new Promise((resolve) => redis.once('exit', resolve))
    const started = Date.now()
    const down = await api(stack, browser, '/session')
    t.equal(down.status, 503)
    t.equal(((await down.json()) as { error: string }).error, 'session_store_unavailable')
    t.ok(Date.now() - started < 1000, 'answered in under a second')
    const loginDown = await browser.fetch(`${stack.bff}/auth/login`)
    t.equal(
      loginDown.status,
      302,
      'a login cannot start without the store: the browser lands on the error page',
    )
    t.equal(loginDown.headers.get('location'), `${FRONTEND}/login?error=upstream_unavailable`)
    t.equal((await fetch(`${stack.bff}/readyz`)).status, 503)
    t.equal((await fetch(`${stack.bff}/healthz`)).status, 200)

    redis = startRedis(port)
    t.ok(
      await until(async () => (await fetch(`${stack.bff}/readyz`)).status === 200),
      'ready again without a restart',
    )
    // The data died with that Redis (it keeps nothing on disk): the session is gone, but service is back.
    const after = await api(stack, browser, '/session')
    t.equal(after.status, 401)
    const again = await signedIn(stack, 1)
    t.equal((await api(stack, again.browser, '/session')).status, 200)
  },
)

t.test('the default SESSION_SECRET of the harness differs from the rotation secrets', async (t) => {
  t.not(SESSION_SECRET, OLD)
})
