import { spawn } from 'node:child_process'
import http from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startEpccSimulator } from '../dev/epcc-sim/index.js'
import { freePort } from '../dev/net.js'
import { LOAD_SHEDDING } from '../plugins/under-pressure.js'
import { Browser } from './support/browser.js'
import { api, login, signedIn, switchAccount } from './support/flows.js'
import { FRONTEND, SESSION_SECRET, startStack } from './support/stack.js'

t.test('readiness follows EPCC both ways; liveness depends on nothing', async (t) => {
  const stack = await startStack(t)
  t.equal((await fetch(`${stack.bff}/readyz`)).status, 200)
  stack.sim.fault({ path: '/v2/settings', kind: 'html5xx', status: 503 })
  stack.sim.fault({ path: '/v2/authentication-realms', kind: 'html5xx', status: 503 })
  await stack.app.realm.refresh().catch(() => {})
  const down = await fetch(`${stack.bff}/readyz`)
  t.equal(down.status, 503)
  t.same(await down.json(), {
    status: 'unavailable',
    checks: { sessionStore: true, epcc: false },
    reason: 'EPCC did not answer account_authentication_settings (HTTP 503)',
  })
  t.equal((await fetch(`${stack.bff}/healthz`)).status, 200)
  stack.sim.clearFaults()
  // The breaker may have opened after those failures: readiness returns once EPCC answers again.
  let ready = 0
  for (let i = 0; i < 60 && ready !== 200; i++) {
    ready = (await fetch(`${stack.bff}/readyz`)).status
    if (ready !== 200) await sleep(250)
  }
  t.equal(ready, 200, 'ready again without a restart')
})

t.test(
  '/metrics: requests by route, logins by outcome, EPCC calls, renewals, sessions; no ids in labels',
  async (t) => {
    const stack = await startStack(t)
    const { browser, member } = await signedIn(stack, 2)
    await api(stack, browser, '/session')
    await switchAccount(stack, browser, member.accounts[1]?.id)
    await fetch(`${stack.bff}/oauth2/callback?state=${'x'.repeat(43)}`, { redirect: 'manual' })
    const response = await fetch(`${stack.bff}/metrics`)
    t.equal(response.status, 200)
    t.match(response.headers.get('content-type'), /text\/plain/)
    const text = await response.text()
    t.match(
      text,
      /bff_http_request_duration_seconds_bucket\{[^}]*route="\/session"[^}]*method="GET"[^}]*status="200"/,
    )
    t.match(text, /bff_logins_total\{outcome="success"\} 1/)
    t.match(text, /bff_logins_total\{outcome="login_expired"\} 1/)
    t.match(text, /bff_epcc_call_duration_seconds_count\{operation="exchange_oidc_code",status="201"\} 1/)
    t.match(text, /bff_memory_store_sessions 1/)
    t.match(text, /bff_epcc_circuit_open 0/)
    t.match(text, /bff_session_store_errors_total 0/)
    for (const id of [member.id, ...member.accounts.map((a) => a.id)])
      t.notOk(text.includes(id), `no ${id} in metrics`)
    t.notMatch(text, /eyJ/, 'no token in metrics')
  },
)

t.test(
  'EPCC 429: Retry-After honoured for an idempotent call; passed to the browser through the proxy',
  async (t) => {
    const stack = await startStack(t)
    const member = stack.sim.addMember({ name: 'Ria', email: 'ria@example.com', accounts: 1 })
    stack.sim.fault({
      method: 'GET',
      path: '/v2/account-members/',
      kind: 'rate-limit',
      retryAfterS: 1,
      times: 1,
    })
    const browser = new Browser()
    const result = await login(stack, browser, member.id)
    t.equal(result.location, FRONTEND, 'the member profile was read after waiting')
    t.equal(stack.sim.calls('GET', '/v2/account-members/').length, 2)

    stack.sim.fault({ method: 'GET', path: '/v2/carts', kind: 'rate-limit', retryAfterS: 7, times: 1 })
    const proxied = await api(stack, browser, '/api/epcc/v2/carts')
    t.equal(proxied.status, 429)
    t.equal(proxied.headers.get('retry-after'), '7')
  },
)

/** Keeps the event loop of the process the BFF runs in busy in `sliceMs` blocks, yielding between them. */
function burnCpu(sliceMs: number): () => Promise<void> {
  let busy = true
  const load = (async () => {
    while (busy) {
      const until = Date.now() + sliceMs
      while (Date.now() < until) {
        // CPU-bound work, as a stuck handler would do
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  return async () => {
    busy = false
    await load
  }
}

t.test('load shedding: a lagging event loop gets 503 + Retry-After; liveness stays 200', async (t) => {
  const stack = await startStack(t, { loadShedding: LOAD_SHEDDING })
  // Blocks longer than the threshold: everything that arrives waits over a second.
  const stop = burnCpu(LOAD_SHEDDING.maxEventLoopDelay + 200)
  await sleep(1500)
  const [shed, alive] = await Promise.all([
    fetch(`${stack.bff}/auth/profiles`, { headers: { 'x-csrf': '1' } }),
    fetch(`${stack.bff}/healthz`),
  ])
  await stop()
  t.equal(shed.status, 503)
  t.ok(shed.headers.get('retry-after'))
  t.equal(((await shed.json()) as { error: string }).error, 'overloaded')
  t.equal(alive.status, 200)
  await sleep(1200)
  t.equal(
    (await fetch(`${stack.bff}/auth/profiles`, { headers: { 'x-csrf': '1' } })).status,
    200,
    'served again',
  )
})

t.test('load shedding: a fully busy event loop that keeps up is not shed', async (t) => {
  const stack = await startStack(t, { loadShedding: LOAD_SHEDDING })
  // 100 % utilisation in 20 ms blocks: a saturated but responsive process, as under a closed-loop load.
  const stop = burnCpu(20)
  await sleep(1500)
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    statuses.push((await fetch(`${stack.bff}/auth/profiles`, { headers: { 'x-csrf': '1' } })).status)
  }
  await stop()
  t.same(statuses, [200, 200, 200, 200, 200])
})

t.test('audit events carry the request id and member id, never a token', async (t) => {
  const stack = await startStack(t)
  const { browser, member } = await signedIn(stack, 2)
  await switchAccount(stack, browser, member.accounts[1]?.id)
  await api(stack, browser, '/auth/logout', { method: 'POST' })
  stack.sim.fault({
    method: 'POST',
    path: '/v2/account-members/tokens',
    kind: 'status',
    status: 401,
    times: 1,
  })
  await login(stack, new Browser(), member.id)
  const events = stack.logs.entries()
  for (const msg of ['login succeeded', 'account switched', 'logout']) {
    const event = events.find((e) => e.msg === msg)
    t.ok(event, msg)
    t.equal(event?.memberId, member.id, `${msg}: member id`)
    t.ok(event?.reqId, `${msg}: request id`)
  }
  const failed = events.find((e) => e.msg === 'login failed')
  t.equal(failed?.loginError, 'login_failed')
  t.ok(failed?.reqId)
  t.notMatch(stack.logs.text, /eyJ/, 'no JWT in any log line')
})

t.test(
  'graceful shutdown of a real process: readiness 503 at once, the in-flight callback completes, exit 0',
  async (t) => {
    const port = await freePort()
    const publicUrl = `http://127.0.0.1:${port}`
    const sim = await startEpccSimulator({ idp: 'direct', redirectUris: [`${publicUrl}/oauth2/callback`] })
    t.teardown(() => sim.close())
    const member = sim.addMember({ name: 'Gus', email: 'gus@example.com', accounts: 1 })
    sim.directLogin.memberId = member.id
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: join(import.meta.dirname, '..'),
      env: {
        PATH: process.env.PATH ?? '',
        EPCC_BASE_URL: sim.apiUrl,
        EPCC_CLIENT_ID: sim.clientId,
        PUBLIC_URL: publicUrl,
        FRONTEND_URL: FRONTEND,
        SESSION_SECRET,
        HOST: '127.0.0.1',
        PORT: String(port),
        SHUTDOWN_DRAIN_S: '2',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    t.teardown(() => {
      child.kill('SIGKILL')
    })
    let ready = 0
    for (let i = 0; i < 300 && ready !== 200; i++) {
      ready = await fetch(`${publicUrl}/readyz`).then(
        (r) => r.status,
        () => 0,
      )
      if (ready !== 200) await sleep(100)
    }
    t.equal(ready, 200, 'the server came up')

    const browser = new Browser()
    const start = await browser.fetch(`${publicUrl}/auth/login`)
    t.equal(
      start.status,
      302,
      `login started: ${start.status} ${start.status === 302 ? '' : await start.text()}`,
    )
    const { url: callbackUrl } = await browser.follow(start.headers.get('location') ?? '', {
      stopAt: (u) => u.pathname === '/oauth2/callback',
    })
    sim.fault({ method: 'POST', path: '/v2/account-members/tokens', kind: 'delay', delayMs: 2500, times: 1 })
    const inFlight = browser.fetch(callbackUrl)
    await sleep(200)
    const signalled = Date.now()
    child.kill('SIGTERM')
    // "At once": while the drain still serves requests (a busy machine may take a moment to deliver the signal).
    let readiness = 0
    for (let i = 0; i < 15 && readiness !== 503; i++) {
      await sleep(100)
      readiness = (await fetch(`${publicUrl}/readyz`)).status
    }
    t.equal(readiness, 503, 'readiness is 503 while the drain still serves')
    const response = await inFlight
    t.equal(response.status, 302)
    t.equal(
      response.headers.get('location'),
      FRONTEND,
      'the callback in the middle of its exchange completed',
    )
    t.equal(await exited, 0, 'exit code 0')
    t.ok(Date.now() - signalled < 12_000, 'within the bound (drain 2 s + close, under 12 s)')
    t.match(output, /"msg":"closed"/)
  },
)

t.test(
  'a request that reaches a closing server gets 503 shutting_down in the usual shape, never Fastify’s own body',
  async (t) => {
    const stack = await startStack(t)
    stack.sim.fault({ path: '/v2/carts', kind: 'delay', delayMs: 1000 })
    // One keep-alive connection: the second request travels on it once the first (in flight) is answered.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const get = (path: string) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        http
          .get(`${stack.bff}${path}`, { agent, headers: { 'x-csrf': '1' } }, (res) => {
            let body = ''
            res.on('data', (chunk) => {
              body += chunk
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
          })
          .on('error', reject)
      })
    const inFlight = get('/api/epcc/v2/carts')
    while (!stack.sim.log.some((r) => r.path.startsWith('/v2/carts'))) await sleep(10)
    const closed = stack.app.close()
    const late = await get('/session')
    await inFlight
    await closed
    t.equal(late.status, 503)
    t.same(JSON.parse(late.body), {
      error: 'shutting_down',
      message: 'This server is shutting down; try again.',
    })
    t.equal(late.headers['cache-control'], 'no-store')
    t.equal(late.headers['retry-after'], '1')
    t.equal(late.headers.connection, 'close')
  },
)
