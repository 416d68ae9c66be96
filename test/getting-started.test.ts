/**
 * The README's path from the demo to your own setup, with real processes: `npm run sim` prints an
 * environment; `npm run check` with it passes, and fails on a wrong client id with a line that says so;
 * `npm start` with it completes a login through the IdP's form.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort } from '../dev/net.js'
import { Browser, idpLogin } from './support/browser.js'

const ROOT = join(import.meta.dirname, '..')
// The same TypeScript loader `npm run sim` uses, by URL: the processes run in a directory of their own.
const TSX = import.meta.resolve('tsx')

interface Run {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

// Whatever ends this file, no simulator or server it started outlives it.
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

function run(script: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Run {
  const child = spawn(process.execPath, ['--import', TSX, join(ROOT, script), ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '', ...opts.env },
  })
  children.add(child)
  child.on('exit', () => children.delete(child))
  let output = ''
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { child, output: () => output, exited }
}

/** Resolves once `pattern` shows in the output; rejects if the process ends first. */
async function waitFor(proc: Run, pattern: RegExp): Promise<void> {
  while (!pattern.test(proc.output())) {
    const ended = await Promise.race([proc.exited.then(() => true), sleep(50).then(() => false)])
    if (ended && !pattern.test(proc.output()))
      throw new Error(`process ended before ${pattern}:\n${proc.output()}`)
  }
}

/** Polls `/healthz` until the server answers; rejects if the process ends first. */
async function untilHealthy(proc: Run, base: string): Promise<void> {
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`server exited:\n${proc.output()}`)
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    await sleep(50)
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The processes keep nothing worth a graceful stop. */
async function stop(proc: Run) {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
  await proc.exited
}

t.test('npm run sim, npm run check and npm start, as the README walks them', async (t) => {
  const bffPort = await freePort()
  const publicUrl = `http://localhost:${bffPort}`
  const dir = mkdtempSync(join(tmpdir(), 'bff-getting-started-'))

  const sim = run('dev/sim.ts', ['--port', '0', '--public-url', publicUrl], { cwd: ROOT })
  t.teardown(() => stop(sim))
  await waitFor(sim, /Press Ctrl-C to stop/)
  const env = sim
    .output()
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
  t.same(
    env.map((line) => line.split('=')[0]),
    ['EPCC_BASE_URL', 'EPCC_CLIENT_ID', 'PUBLIC_URL', 'FRONTEND_URL', 'SESSION_SECRET', 'PORT'],
    'the simulator prints the environment npm start needs',
  )
  t.ok(env.includes(`PUBLIC_URL=${publicUrl}`), 'with the public URL it was given')
  t.ok(env.includes(`PORT=${bffPort}`), 'and the port that URL names')
  writeFileSync(join(dir, '.env'), `${env.join('\n')}\nLOG_LEVEL=warn\n`)

  const check = run('src/check.ts', [], { cwd: dir })
  t.equal(await check.exited, 0, 'npm run check passes against the simulator')
  const lines = check.output().trim().split('\n')
  for (const subject of ['store token', 'realm', 'redirect_uri', 'OIDC profiles', 'sessions']) {
    t.ok(
      lines.some((l) => l.startsWith(`ok    ${subject}:`)),
      `a line says ${subject} is fine`,
    )
  }
  t.ok(lines.includes(`register this redirect_uri in the realm: ${publicUrl}/oauth2/callback`))
  t.equal(lines.at(-1), 'check passed')

  const wrong = run('src/check.ts', [], { cwd: dir, env: { EPCC_CLIENT_ID: 'not-the-client-id' } })
  t.equal(await wrong.exited, 1, 'a wrong client id fails the check')
  t.match(
    wrong.output(),
    /^FAIL {2}store token: EPCC refused EPCC_CLIENT_ID \(HTTP 401\)/m,
    '…with a line that says so',
  )
  t.notMatch(wrong.output(), /not-the-client-id/, 'and no configured value is echoed')

  const elsewhere = run('src/check.ts', [], { cwd: dir, env: { PUBLIC_URL: 'http://localhost:1' } })
  t.equal(await elsewhere.exited, 1, 'a PUBLIC_URL the realm does not know fails the check')
  t.match(
    elsewhere.output(),
    /^FAIL {2}redirect_uri: http:\/\/localhost:1\/oauth2\/callback is not in the realm's redirect_uris/m,
  )

  const server = run('src/server.ts', [], { cwd: dir })
  t.teardown(() => stop(server))
  await untilHealthy(server, publicUrl)
  const browser = new Browser()
  // A fresh process on a busy machine may shed load at first (503 overloaded, Retry-After): wait as a browser would.
  let start = await browser.fetch(`${publicUrl}/auth/login?returnTo=%2F`)
  for (let i = 0; i < 10 && start.status === 503; i++) {
    await sleep(1000)
    start = await browser.fetch(`${publicUrl}/auth/login?returnTo=%2F`)
  }
  t.equal(start.status, 302, 'npm start serves /auth/login')
  const isCallback = (u: URL) => u.href.startsWith(`${publicUrl}/oauth2/callback`)
  const callback = await idpLogin(
    browser,
    start.headers.get('location') ?? '',
    { email: 'ada@example.com', password: 'demo-password' },
    isCallback,
  )
  const landing = await browser.fetch(callback)
  t.equal(landing.headers.get('location'), `${env.find((l) => l.startsWith('FRONTEND_URL='))?.slice(13)}/`)
  const session = await browser.fetch(`${publicUrl}/session`, { headers: { 'X-CSRF': '1' } })
  t.equal(session.status, 200, 'signed in')
  t.match(await session.json(), { member: { email: 'ada@example.com' }, accountCount: 12 })
})

t.test(
  'npm run check on an incomplete configuration: one FAIL line per variable, then .env.example',
  async (t) => {
    const empty = mkdtempSync(join(tmpdir(), 'bff-check-empty-'))
    const check = run('src/check.ts', [], { cwd: empty, env: { SESSION_SECRET: 'short-secret-value' } })
    t.equal(await check.exited, 1)
    const lines = check.output().trim().split('\n')
    for (const name of ['EPCC_CLIENT_ID', 'PUBLIC_URL', 'FRONTEND_URL', 'SESSION_SECRET']) {
      t.ok(
        lines.some((l) => l.startsWith(`FAIL  configuration: ${name}:`)),
        `${name} named`,
      )
    }
    t.equal(lines.at(-1)?.trim(), 'see .env.example for every variable, its default and its allowed values')
    t.notMatch(check.output(), /short-secret-value/, 'no value echoed')
  },
)

t.test('a busy port is one line naming the setting that moves it, not a stack', async (t) => {
  const held = createServer()
  const port = await freePort()
  await new Promise<void>((resolve) => held.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => held.close(() => resolve())))

  const sim = run('dev/sim.ts', ['--port', String(port)], { cwd: ROOT })
  t.equal(await sim.exited, 1, 'npm run sim exits 1')
  t.equal(
    sim.output().trim(),
    `sim: port ${port} is already in use: stop what holds it, or set --port to another port (npm run sim -- --port N uses N, N+1 and N+2)`,
  )

  const shopPort = await freePort()
  const demo = run('dev/demo.ts', [], {
    cwd: ROOT,
    env: { DEMO_BFF_PORT: String(shopPort), DEMO_SHOP_PORT: String(port) },
  })
  t.equal(await demo.exited, 1, 'npm run demo exits 1')
  t.match(demo.output().trim(), new RegExp(`^demo: port ${port} is already in use: .* set DEMO_SHOP_PORT`))
  t.notMatch(demo.output(), /\n\s+at /, 'no stack trace')
})
