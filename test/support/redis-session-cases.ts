import type { Test } from 'tap'
import { Browser } from './browser.js'
import { api, cookieHost, login, signedIn, startLogin } from './flows.js'
import { FRONTEND, secretsSeen, startStack } from './stack.js'

export const OLD = 'old-rotation-secret-0123456789abcdefghij'
export const NEW = 'new-rotation-secret-0123456789abcdefghij'

/** A Redis deployment the BFF is configured for, and a way to look at what it stores. */
export interface RedisUnderTest {
  name: string
  env: Record<string, string>
  /** Every key matching `pattern`, and its value. */
  dump(pattern: string): Promise<string[]>
}

/**
 * The end-to-end behaviour of sessions in Redis, with two BFF replicas on one store: run against one node,
 * Sentinel and Cluster alike.
 */
export function redisSessionCases(t: Test, redis: RedisUnderTest): void {
  t.test(`${redis.name}: a login works and nothing secret is stored in clear`, async (t) => {
    const stack = await startStack(t, { env: redis.env })
    const member = stack.sim.addMember({ name: 'Rita', email: 'rita@example.com', accounts: 3 })
    const browser = new Browser()
    const result = await login(stack, browser, member.id)
    t.equal(result.location, FRONTEND)
    t.equal((await api(stack, browser, '/session')).status, 200)
    // A second login left pending, so that a transaction (with its verifier) is in Redis too.
    await startLogin(stack, browser)

    const stored = (await redis.dump('epcc-bff:*')).join('\n')
    const secrets = [...secretsSeen(stack.sim), result.callbackUrl.searchParams.get('code') ?? '']
    t.ok(secrets.length >= 4)
    for (const secret of secrets) t.notOk(stored.includes(secret), `${secret.slice(0, 6)}… not in Redis`)
    t.notMatch(stored, /rita@example\.com|"auth"|"tokens"/, 'no record readable in clear')
    t.match(stored, /^v1\./m, 'values are sealed envelopes')
  })

  t.test(`${redis.name}: secret rotation [OLD] → [NEW,OLD] keeps working → [NEW] still works`, async (t) => {
    const stack = await startStack(t, { env: { ...redis.env, SESSION_SECRET: OLD } })
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

  t.test(`${redis.name}: two replicas share sessions`, async (t) => {
    const stack = await startStack(t, { env: redis.env })
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

  t.test(`${redis.name}: concurrent switches on two replicas leave one consistent session`, async (t) => {
    const stack = await startStack(t, { env: redis.env })
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
}
