import { type ChildProcess, spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { connect, createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { freePort } from '../dev/net.js'
import { api, signedIn } from './support/flows.js'
import { OLD, redisSessionCases } from './support/redis-session-cases.js'
import { storedText } from './support/redis-topologies.js'
import { FRONTEND, SESSION_SECRET, startStack } from './support/stack.js'

// Never skipped: CI starts Redis, and a missing server fails the run.
const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'

// The same cases run against Sentinel (redis-sentinel.test.ts) and Cluster (redis-cluster.test.ts).
redisSessionCases(t, {
  name: 'one Redis node',
  env: { REDIS_URL },
  dump: async (pattern) => {
    const redis = new Redis(REDIS_URL)
    try {
      const keys = await redis.keys(pattern)
      const values = await Promise.all(keys.map((k) => storedText(redis, k)))
      return [...keys, ...values.flat()]
    } finally {
      redis.disconnect()
    }
  },
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

    // Twenty members at once: each gets its 503, all of them wait on one shared readiness listener (one per
    // request made Node print MaxListenersExceededWarning outside the JSON log), and the log says it once.
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    t.teardown(() => process.off('warning', onWarning))
    const burst = await Promise.all(Array.from({ length: 20 }, () => api(stack, browser, '/session')))
    t.same(
      burst.map((r) => `${r.status} ${r.headers.get('retry-after')} ${r.headers.get('cache-control')}`),
      Array.from({ length: 20 }, () => '503 1 no-store'),
    )
    await new Promise((resolve) => setImmediate(resolve))
    t.same(warnings, [], 'no process warning')
    const lines = (msg: string) => stack.logs.entries().filter((e) => e.msg === msg)
    t.equal(lines('session store unavailable').length, 1, 'the outage is logged once as it starts')
    t.equal(
      stack.logs.entries().filter((e) => Number(e.level) >= 50).length,
      1,
      'and no error line per request',
    )

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
    t.ok(
      await until(async () => {
        await fetch(`${stack.bff}/readyz`)
        return lines('session store available again').length === 1
      }),
      'the outage is logged once as it ends',
    )
    // The first 503 (a session), the login, and the burst; /readyz answers its own 503 and counts none.
    t.equal(
      lines('session store available again')[0]?.refusedRequests,
      22,
      'with the count of refused requests',
    )
  },
)

t.test('the default SESSION_SECRET of the harness differs from the rotation secrets', async (t) => {
  t.not(SESSION_SECRET, OLD)
})

t.test('rate limits count from the first request, even when Redis is slow to connect at start', async (t) => {
  // A relay that holds every new connection to Redis for a while before it passes bytes, as a Sentinel lookup
  // or a TLS handshake to a managed Redis does. Without the start waiting for the limiter's connection, the
  // first requests pass uncounted and the fourth login start gets through.
  const relay = createServer((client) => {
    client.pause()
    const hold = setTimeout(() => {
      const upstream = connect(Number(new URL(REDIS_URL).port || 6379), new URL(REDIS_URL).hostname)
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
      client.pipe(upstream).pipe(client)
      client.resume()
    }, 300) // under the 500 ms command timeout, which the connection's ready check also has
    client.on('close', () => clearTimeout(hold))
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  t.teardown(() => relay.close())
  const address = relay.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const stack = await startStack(t, {
    env: { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '127.0.0.1' },
  })
  // A client address of this run's own: the counters live in the Redis that other test files share.
  const client = `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const response = await fetch(`${stack.bff}/auth/login`, {
      redirect: 'manual',
      headers: { 'x-forwarded-for': client },
    })
    statuses.push(response.status)
  }
  t.same(statuses, [302, 302, 302, 429], 'the fourth login start within a minute is refused')
})
