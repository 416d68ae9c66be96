import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { RedisKeyValueStore } from '../../src/session/redis.js'
import type { Browser } from './browser.js'
import { signedIn } from './flows.js'
import { redisSessionCases } from './redis-session-cases.js'
import type { RedisHa } from './redis-topologies.js'
import { secretsSeen, startStack } from './stack.js'
import { storeContract } from './store-contract.js'

async function until(check: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true
    await sleep(100)
  }
  return false
}

/**
 * Everything a highly available Redis must give the BFF: the store contract, the two-replica end-to-end
 * cases, and — last, since it kills a master — a failover that loses no signed-in member.
 */
export function haSuite(t: Test, ha: RedisHa): void {
  storeContract(
    t,
    ha.kind,
    async () => new RedisKeyValueStore(ha.topology, { prefix: `test:${process.pid}:` }),
  )

  // First among the end-to-end cases: the logins of later ones would count against the same address.
  t.test(`${ha.kind}: the login rate limit counts across replicas`, async (t) => {
    const stack = await startStack(t, { env: { ...ha.env, RATE_LIMIT_PER_MINUTE: '3' } })
    const b = await stack.replica()
    const statuses: number[] = []
    for (const bff of [stack.bff, b.bff, stack.bff, b.bff]) {
      statuses.push((await fetch(`${bff}/auth/login`, { redirect: 'manual' })).status)
    }
    t.same(
      statuses,
      [302, 302, 302, 429],
      'the fourth login start within a minute is refused, on either replica',
    )
  })
  redisSessionCases(t, { name: ha.kind, env: ha.env, dump: ha.dump })

  t.test(`${ha.kind}: a master fails over; every member stays signed in and logins work again`, async (t) => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`)
    process.on('warning', onWarning)
    t.teardown(() => process.off('warning', onWarning))

    const stack = await startStack(t, { env: ha.env })
    const b = await stack.replica()
    const replicas = [stack.bff, b.bff]
    const members: Browser[] = []
    for (let i = 0; i < 6; i++) members.push((await signedIn(stack, 2)).browser)
    const cookieOf = (browser: Browser) => browser.cookie(new URL(stack.bff).host, 'epcc-bff') ?? ''
    const session = (bff: string, browser: Browser) =>
      fetch(`${bff}/session`, { headers: { 'x-csrf': '1', cookie: `epcc-bff=${cookieOf(browser)}` } })
    for (const browser of members) t.equal((await session(b.bff, browser)).status, 200, 'signed in')

    // Redis replicates asynchronously: a write the master took in its last moment may be lost with it.
    // The members' sessions were written before the failover, so wait until the replica has them.
    await ha.replicated()

    // Members keep using the BFF while the master goes: each answer is a success or a clean 503, never a 500.
    let failingOver = true
    const seen = new Map<string, number>()
    const traffic = (async () => {
      while (failingOver) {
        await Promise.all(
          members.map(async (browser, i) => {
            const response = await session(replicas[i % 2] ?? stack.bff, browser)
            const body = (await response.json()) as { error?: string }
            const retryAfter = response.headers.get('retry-after')
            const outcome =
              response.status === 503
                ? `503 ${body.error} retry-after=${retryAfter} ${response.headers.get('cache-control')}`
                : String(response.status)
            seen.set(outcome, (seen.get(outcome) ?? 0) + 1)
          }),
        )
        await sleep(20)
      }
    })()
    await ha.killMaster()
    t.ok(
      await until(async () => {
        for (const bff of replicas) if ((await fetch(`${bff}/readyz`)).status !== 200) return false
        return true
      }),
      'both replicas ready again, without a restart',
    )
    failingOver = false
    await traffic
    t.ok(seen.get('200'), 'requests succeeded during the failover')
    for (const outcome of seen.keys()) {
      t.match(outcome, /^(200|503 session_store_unavailable retry-after=1 no-store)$/, `answered ${outcome}`)
    }

    // Every member is still signed in, on either replica.
    for (const browser of members) {
      for (const bff of replicas) {
        t.ok(await until(async () => (await session(bff, browser)).status === 200), 'still signed in')
      }
    }
    // New logins work once the new master is known (a login writes a transaction, then a session and vault).
    const fresh = await signedIn(stack, 2)
    t.equal((await session(b.bff, fresh.browser)).status, 200, 'a new login works')

    // An outage is two log lines per replica (when it starts, and once the store has answered for a moment
    // again, when it ends, with a count), not one per refused request.
    const lines = (msg: string) => stack.logs.entries().filter((e) => e.msg === msg)
    const started = lines('session store unavailable')
    t.ok(started.length <= 2, 'at most one "unavailable" line per replica')
    t.ok(
      await until(async () => {
        await Promise.all(replicas.map((bff) => fetch(`${bff}/readyz`)))
        return lines('session store available again').length === started.length
      }),
      'each outage logged as it ends',
    )
    t.equal(lines('session store unavailable').length, started.length, 'and not started again')
    const refused = [...seen].filter(([outcome]) => outcome.startsWith('503')).reduce((n, [, c]) => n + c, 0)
    t.equal(
      lines('session store available again').reduce((n, e) => n + Number(e.refusedRequests), 0),
      refused,
      'the end lines count the refused requests',
    )
    const entries = stack.logs.entries()
    t.same(
      entries.filter((e) => Number(e.level) >= 50 && e.msg !== 'session store unavailable').map((e) => e.msg),
      [],
      'no other error logged',
    )
    t.same(warnings, [], 'no process warning (a listener per waiting request would print one)')
    for (const secret of secretsSeen(stack.sim)) t.notOk(stack.logs.text.includes(secret), 'no secret logged')
  })
}
