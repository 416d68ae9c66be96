import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import { Browser } from './support/browser.js'
import { api, cookieHost, sessionCookie, signedIn, switchAccount } from './support/flows.js'
import { FRONTEND, inEachDeployment, startStack } from './support/stack.js'

const ref = (account: { id: string; name: string } | undefined) => ({ id: account?.id, name: account?.name })

interface SessionBody {
  member: { id: string; name: string; email: string }
  activeAccount: { id: string; name: string }
  accountCount: number
  expiresAt: string
}

t.test('session routes', async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const stack = await startStack(t, { deployment })

    t.test('without a session: 401 unauthenticated, and no cookie is created', async (t) => {
      const browser = new Browser()
      for (const path of ['/session', '/session/accounts']) {
        const response = await api(stack, browser, path)
        t.equal(response.status, 401, path)
        t.same(await response.json(), {
          error: 'unauthenticated',
          message: 'No live session; sign in again.',
        })
        t.equal(response.headers.get('cache-control'), 'no-store')
        t.same(response.headers.getSetCookie(), [])
      }
      const put = await switchAccount(stack, browser, '00000000-0000-4000-8000-000000000000')
      t.equal(put.status, 401)
    })

    t.test('GET /session tells who is signed in, the active account and when the session ends', async (t) => {
      const { browser, member } = await signedIn(stack, 3)
      const before = Date.now()
      const response = await api(stack, browser, '/session')
      t.equal(response.status, 200)
      t.equal(response.headers.get('cache-control'), 'no-store')
      t.same(response.headers.getSetCookie(), [], 'a read that changes nothing sets no cookie')
      const body = (await response.json()) as SessionBody
      t.same(body.member, { id: member.id, name: member.name, email: member.email })
      t.same(body.activeAccount, ref(member.accounts[0]))
      t.equal(body.accountCount, 3)
      const expiresAt = Date.parse(body.expiresAt)
      // The idle deadline (1800 s) comes first; lastSeenAt may lag by the touch interval (≤ 60 s).
      t.ok(expiresAt <= before + 1800_000 + 1000 && expiresAt >= before + 1800_000 - 61_000, body.expiresAt)
    })

    t.test('GET /session/accounts pages through the accounts', async (t) => {
      const { browser, member } = await signedIn(stack, 30)
      const first = await api(stack, browser, '/session/accounts')
      t.same(await first.json(), {
        data: member.accounts.slice(0, 25).map(ref),
        meta: { page: { offset: 0, limit: 25 }, results: { total: 30 } },
      })
      const second = await api(stack, browser, '/session/accounts?page[offset]=20&page[limit]=100')
      t.same(await second.json(), {
        data: member.accounts.slice(20).map(ref),
        meta: { page: { offset: 20, limit: 100 }, results: { total: 30 } },
      })
      for (const query of ['page[limit]=101', 'page[limit]=0', 'page[offset]=-1', 'page[limit]=ten']) {
        const bad = await api(stack, browser, `/session/accounts?${query}`)
        t.equal(bad.status, 400, query)
        t.equal(((await bad.json()) as { error: string }).error, 'bad_request')
      }
    })

    t.test('accounts beyond the first 100 are listed and can be switched to', async (t) => {
      const { browser, member } = await signedIn(stack, 250)
      const page = await api(stack, browser, '/session/accounts?page[offset]=200&page[limit]=50')
      t.same(((await page.json()) as { data: unknown[] }).data, member.accounts.slice(200, 250).map(ref))
      const far = member.accounts[230]
      const switched = await switchAccount(stack, browser, far?.id)
      t.equal(switched.status, 200)
      t.same(((await switched.json()) as SessionBody).activeAccount, ref(far))
    })

    t.test(
      'switching to one of my accounts: 200, a new session id, the old id resolves to nothing',
      async (t) => {
        const { browser, member } = await signedIn(stack, 3)
        const oldCookie = browser.cookie(cookieHost(stack), sessionCookie(stack)) ?? ''
        const target = member.accounts[2]
        const response = await switchAccount(stack, browser, target?.id)
        t.equal(response.status, 200)
        const body = (await response.json()) as SessionBody
        t.same(body.activeAccount, ref(target))
        t.equal(body.member.id, member.id)
        const newCookie = browser.cookie(cookieHost(stack), sessionCookie(stack))
        t.ok(newCookie)
        t.not(newCookie, oldCookie)
        const stale = new Browser()
        stale.setCookie(cookieHost(stack), sessionCookie(stack), oldCookie)
        t.equal((await api(stack, stale, '/session')).status, 401)
        t.same(
          ((await (await api(stack, browser, '/session')).json()) as SessionBody).activeAccount,
          ref(target),
        )
      },
    )

    t.test('switching to a foreign or random account: 404 unknown_account, session unchanged', async (t) => {
      const { browser } = await signedIn(stack, 2)
      const foreign = stack.sim.addAccount({ name: 'Not yours' })
      const cookie = browser.cookie(cookieHost(stack), sessionCookie(stack))
      const before = await (await api(stack, browser, '/session')).json()
      for (const accountId of [foreign.id, '00000000-0000-4000-8000-000000000000']) {
        const response = await switchAccount(stack, browser, accountId)
        t.equal(response.status, 404)
        t.equal(((await response.json()) as { error: string }).error, 'unknown_account')
      }
      t.equal(browser.cookie(cookieHost(stack), sessionCookie(stack)), cookie)
      t.same(await (await api(stack, browser, '/session')).json(), before)
    })

    t.test('malformed switch bodies are 400 bad_request (or 415), and lose nothing', async (t) => {
      const { browser } = await signedIn(stack, 2)
      const cases: Array<[string, string | undefined, number]> = [
        ['{"accountId":""}', 'application/json', 400],
        ['{"accountId":123}', 'application/json', 400],
        ['{"other":"x"}', 'application/json', 400],
        ['{"accountId":"a/../b"}', 'application/json', 400],
        ['{"__proto__":{"x":1},"accountId":"a"}', 'application/json', 400],
        ['{not json', 'application/json', 400],
        ['accountId=x', 'text/plain', 415],
        ['accountId=x', 'application/x-www-form-urlencoded', 415],
      ]
      for (const [body, type, status] of cases) {
        const response = await api(stack, browser, '/session/active-account', {
          method: 'PUT',
          headers: type ? { 'content-type': type } : {},
          body,
        })
        t.equal(response.status, status, `${type} ${body}`)
      }
      t.equal((await api(stack, browser, '/session')).status, 200)
    })

    t.test('logout: 204, deleted server-side, cookie expired with the same attributes', async (t) => {
      const { browser } = await signedIn(stack, 1)
      const cookie = browser.cookie(cookieHost(stack), sessionCookie(stack)) ?? ''
      const response = await api(stack, browser, '/auth/logout', { method: 'POST' })
      t.equal(response.status, 204)
      const cleared = browser.lastSetCookie(sessionCookie(stack)) ?? ''
      t.ok(cleared.startsWith(`${sessionCookie(stack)}=;`), 'the cookie, emptied')
      t.match(cleared, /Expires=Thu, 01 Jan 1970/)
      t.match(cleared, /; Path=\//)
      t.match(cleared, /; HttpOnly/)
      t.match(cleared, /; SameSite=Lax/)
      const replay = new Browser()
      replay.setCookie(cookieHost(stack), sessionCookie(stack), cookie)
      t.equal((await api(stack, replay, '/session')).status, 401, 'the old cookie resolves to nothing')
      t.equal(
        (await api(stack, new Browser(), '/auth/logout', { method: 'POST' })).status,
        204,
        'also without a session',
      )
    })

    t.test('the API needs X-CSRF: 1 and an allowed Origin; navigations and probes do not', async (t) => {
      const { browser } = await signedIn(stack, 1)
      const cases: Array<[Record<string, string>, number]> = [
        [{}, 403],
        [{ 'x-csrf': '0' }, 403],
        [{ 'x-csrf': 'true' }, 403],
        [{ 'x-csrf': '1', origin: 'https://evil.example' }, 403],
        [{ 'x-csrf': '1', origin: 'null' }, 403],
        [{ 'x-csrf': '1', 'sec-fetch-site': 'cross-site' }, 403],
        [{ 'x-csrf': '1', origin: FRONTEND }, 200],
        [{ 'x-csrf': '1' }, 200],
      ]
      for (const [headers, status] of cases) {
        const response = await browser.fetch(`${stack.bff}/session`, { headers })
        t.equal(response.status, status, JSON.stringify(headers))
        if (status === 403) t.equal(((await response.json()) as { error: string }).error, 'csrf')
      }
      const logout = await browser.fetch(`${stack.bff}/auth/logout`, { method: 'POST' })
      t.equal(logout.status, 403, 'logout needs the header too')
      const textPlain = await browser.fetch(`${stack.bff}/auth/logout`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
        body: 'x',
      })
      t.equal(textPlain.status, 403)
      t.equal((await api(stack, browser, '/session')).status, 200, 'still signed in')
    })

    t.test('CORS answers the storefront origin with credentials, and no one else', async (t) => {
      const preflight = (origin: string) =>
        new Browser().fetch(`${stack.bff}/session/active-account`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'PUT',
            'access-control-request-headers': 'x-csrf,content-type',
          },
        })
      const ok = await preflight(FRONTEND)
      t.equal(ok.headers.get('access-control-allow-origin'), FRONTEND)
      t.equal(ok.headers.get('access-control-allow-credentials'), 'true')
      t.match(ok.headers.get('access-control-allow-headers') ?? '', /X-CSRF/i)
      const evil = await preflight('https://evil.example')
      t.equal(evil.headers.get('access-control-allow-origin'), null)
    })
  }),
)

t.test('idle and absolute timeouts are enforced server-side', async (t) => {
  const stack = await startStack(t, { env: { SESSION_IDLE_TIMEOUT_S: '1', SESSION_ABSOLUTE_TIMEOUT_S: '3' } })

  t.test('a session unused past the idle timeout is gone', async (t) => {
    const { browser } = await signedIn(stack, 1)
    t.equal((await api(stack, browser, '/session')).status, 200)
    await sleep(1300)
    const response = await api(stack, browser, '/session')
    t.equal(response.status, 401)
  })

  t.test('an active session still ends at the absolute timeout', async (t) => {
    const { browser } = await signedIn(stack, 1)
    const started = Date.now()
    // Active until a second before the deadline: a request slowed by a busy machine still lands in time.
    while (Date.now() - started < 2000) {
      t.equal((await api(stack, browser, '/session')).status, 200, 'alive while active')
      await sleep(400)
    }
    await sleep(Math.max(0, 3200 - (Date.now() - started)))
    t.equal((await api(stack, browser, '/session')).status, 401, 'gone after 3 s however active')
  })
})

t.test("a tab's stale cookie does not wipe the new cookie another tab was just given", async (t) => {
  const stack = await startStack(t)
  const { browser, member } = await signedIn(stack, 2)
  const before = browser.cookie(cookieHost(stack), sessionCookie(stack)) ?? ''
  // Tab A switches account: the browser's cookie now names a new session.
  const switched = await switchAccount(stack, browser, member.accounts[1]?.id)
  t.equal(switched.status, 200)
  // Tab B's request was sent with the old cookie before the switch landed.
  const stale = await new Browser().fetch(`${stack.bff}/session`, {
    headers: { 'x-csrf': '1', cookie: `${sessionCookie(stack)}=${before}` },
  })
  t.equal(stale.status, 401)
  t.same(stale.headers.getSetCookie(), [], 'no Set-Cookie that would delete the new cookie')
  t.equal((await api(stack, browser, '/session')).status, 200, 'the browser is still signed in')
})

t.test('a read that changes nothing writes no session record and sends no cookie', async (t) => {
  /** The memory store, counting the writes of session records. */
  class CountingStore extends MemoryKeyValueStore {
    recordWrites = 0
    override async set(key: string, value: string, ttlMs: number): Promise<void> {
      if (key.startsWith('sess:')) this.recordWrites++
      return super.set(key, value, ttlMs)
    }
  }
  const kv = new CountingStore()
  t.teardown(() => kv.close())
  // Idle timeout 10 s: `lastSeenAt` is written back at most once a second.
  const stack = await startStack(t, { kv, env: { SESSION_IDLE_TIMEOUT_S: '10' } })
  const { browser } = await signedIn(stack, 2)
  const cookie = browser.cookie(cookieHost(stack), sessionCookie(stack))
  const writesAtLogin = kv.recordWrites

  const reads = await Promise.all(Array.from({ length: 20 }, () => api(stack, browser, '/session')))
  t.same([...new Set(reads.map((r) => r.status))], [200])
  t.same(
    reads.filter((r) => r.headers.has('set-cookie')).length,
    0,
    'no Set-Cookie on a read that changed nothing',
  )
  t.equal(kv.recordWrites, writesAtLogin, 'no session record written')

  await sleep(1100)
  const touched = await api(stack, browser, '/session')
  t.equal(touched.status, 200)
  t.equal(kv.recordWrites, writesAtLogin + 1, 'the idle clock is written back once the touch interval passed')
  await api(stack, browser, '/session')
  t.equal(kv.recordWrites, writesAtLogin + 1, 'and then not again on the next read')
  t.equal(
    browser.cookie(cookieHost(stack), sessionCookie(stack)),
    cookie,
    'the cookie is unchanged throughout',
  )
})

t.test(
  'a switch to an account the member does not have costs no EPCC call once the list is known',
  async (t) => {
    const stack = await startStack(t)
    // 250 accounts: only the first 100 tokens are held; the rest are looked up in EPCC's list.
    const { browser } = await signedIn(stack, 250)
    const stranger = '00000000-0000-4000-8000-000000000001'
    const tokenCalls = () => stack.sim.calls('POST', '/v2/account-members/tokens').length
    const before = tokenCalls()
    const first = await switchAccount(stack, browser, stranger)
    t.equal(first.status, 404)
    t.equal(tokenCalls() - before, 3, 'the first look-up reads the three pages of the list')
    for (let i = 0; i < 5; i++) t.equal((await switchAccount(stack, browser, stranger)).status, 404)
    t.equal(tokenCalls() - before, 3, 'the next ones ask EPCC nothing')
    t.equal((await api(stack, browser, '/session')).status, 200, 'the session is unchanged')
  },
)
