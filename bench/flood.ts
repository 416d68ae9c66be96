/**
 * The stress script behind the memory bound of docs/limits.md (not a test: it takes minutes and measures).
 * One BFF process on the memory store, as the image runs it (load shedding on, default limits, behind a
 * trusted balancer: `TRUST_PROXY=true`), and the EPCC simulator in a process of its own. Members sign in,
 * then keep using their sessions (`GET /session` and a proxied call, each from its own address) while
 * 100,000 unfinished logins — no cookie, a returnTo of 1,000 characters, never called back — come from
 * thousands of IPv4 addresses and IPv6 /64s. The BFF's RSS is sampled throughout; at the end every member
 * must still be signed in, with its tokens.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && node dist/bench/flood.js [--logins N] [--members N]
 *     [--pending-limit N] [--return-to <length>] [--bff <another build's dist/>]
 *
 * Prints a Markdown table (BENCHMARKS.md "Unfinished logins flood").
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { freePort } from '../dev/net.js'
import { type InfraReady, SESSION_SECRET } from './lib/fixtures.js'
import { directLogin } from './lib/login.js'
import { Rpc, startNode, stopAll, waitFor } from './lib/proc.js'

const { values: args } = parseArgs({
  options: {
    logins: { type: 'string', default: '100000' },
    members: { type: 'string', default: '50' },
    'pending-limit': { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    'return-to': { type: 'string', default: '1000' },
    /** Another build's dist/ directory, to measure it instead (bench/servers/bff.ts `BENCH_BFF_BUILD`). */
    bff: { type: 'string' },
  },
})
const LOGINS = Number(args.logins)
const MEMBERS = Number(args.members)
const CONCURRENCY = Number(args.concurrency)
const DIST = join(import.meta.dirname, '..')
const log = (line: string) => process.stderr.write(`${line}\n`)

/** VmRSS and VmHWM (peak RSS) of a process, in MiB. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 }
}

/** The n-th flooding address: IPv4 addresses in 10.0.0.0/8, and every fourth one an IPv6 /64 of its own. */
function floodAddress(n: number): string {
  const k = n % 4000
  return k % 4 === 0
    ? `2001:db8:${(k >> 8).toString(16)}:${(k & 0xff).toString(16)}::${n % 997}`
    : `10.${k >> 8}.${k & 0xff}.7`
}

async function main(): Promise<void> {
  const port = await freePort()
  const bff = `http://127.0.0.1:${port}`
  const infra = new Rpc(
    startNode(join(DIST, 'bench/infra.js'), {
      env: { NODE_ENV: 'production', BENCH_REDIRECT_URIS: `${bff}/oauth2/callback` },
    }),
  )
  const up = await infra.ready<InfraReady>()
  const server = startNode(join(DIST, 'bench/servers/bff.js'), {
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_URL: bff,
      FRONTEND_URL: 'http://127.0.0.1:9',
      SESSION_SECRET,
      EPCC_BASE_URL: up.upstreamUrl,
      EPCC_CLIENT_ID: up.clientId,
      EPCC_CLIENT_SECRET: up.clientSecret,
      TRUST_PROXY: 'true',
      ...(args['pending-limit'] ? { PENDING_LOGIN_LIMIT: args['pending-limit'] } : {}),
      ...(args.bff ? { BENCH_BFF_BUILD: args.bff } : {}),
    },
    nodeArgs: ['--enable-source-maps'],
  })
  const pid = server.pid ?? 0
  await waitFor(`${bff}/readyz`)
  const idle = memoryOf(pid)
  log(`BFF ready, RSS ${idle.rss.toFixed(0)} MiB`)

  const members: string[] = []
  for (let i = 0; i < MEMBERS; i++) {
    const id = await infra.call<string>('addMember', {
      name: `M ${i}`,
      email: `m${i}@example.com`,
      accounts: 3,
    })
    await infra.call('directLogin', { memberId: id })
    members.push(await directLogin(bff))
  }
  const signedIn = memoryOf(pid)
  log(`${MEMBERS} members signed in, RSS ${signedIn.rss.toFixed(0)} MiB`)

  const dispatcher = new Agent({ connections: CONCURRENCY + MEMBERS })
  let flooding = true
  const memberAnswers = new Map<number, number>()
  const memberLoop = async (cookie: string, i: number) => {
    const headers = { cookie, 'x-csrf': '1', 'x-forwarded-for': `192.0.2.${i}` }
    while (flooding) {
      for (const path of ['/session', '/api/epcc/v2/carts']) {
        const answer = await request(`${bff}${path}`, { headers, dispatcher })
        await answer.body.dump()
        memberAnswers.set(answer.statusCode, (memberAnswers.get(answer.statusCode) ?? 0) + 1)
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
  const memberLoops = members.map((cookie, i) => memberLoop(cookie, i))

  let peakRss = signedIn.rss
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, memoryOf(pid).rss)
  }, 250)

  const returnTo = encodeURIComponent(`/${'r'.repeat(Number(args['return-to']))}`)
  const floodAnswers = new Map<number, number>()
  let next = 0
  const started = performance.now()
  const flooder = async () => {
    while (next < LOGINS) {
      const n = next++
      const answer = await request(`${bff}/auth/login?returnTo=${returnTo}`, {
        headers: { 'x-forwarded-for': floodAddress(n) },
        dispatcher,
      })
      await answer.body.dump()
      floodAnswers.set(answer.statusCode, (floodAnswers.get(answer.statusCode) ?? 0) + 1)
      if (n % 10_000 === 0) log(`${n} logins sent, RSS ${memoryOf(pid).rss.toFixed(0)} MiB`)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, flooder))
  const seconds = (performance.now() - started) / 1000
  flooding = false
  await Promise.all(memberLoops)
  clearInterval(sampler)
  const after = memoryOf(pid)
  peakRss = Math.max(peakRss, after.rss)

  // Signed in means both: the session record (`GET /session`) and the token vault (a proxied call).
  let stillSignedIn = 0
  for (const cookie of members) {
    let ok = true
    for (const path of ['/session', '/api/epcc/v2/carts']) {
      const answer = await request(`${bff}${path}`, { headers: { cookie, 'x-csrf': '1' }, dispatcher })
      await answer.body.dump()
      ok &&= answer.statusCode === 200
    }
    if (ok) stillSignedIn++
  }
  await dispatcher.close()

  const counts = (m: Map<number, number>) =>
    [...m]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}: ${n}`)
      .join(', ')
  const row = (k: string, v: string) => `| ${k} | ${v} |`
  process.stdout.write(
    [
      `| measure (${LOGINS} unfinished logins, returnTo ${args['return-to']} characters, PENDING_LOGIN_LIMIT=${args['pending-limit'] ?? 'default'}) | value |`,
      '|---|---|',
      row('RSS idle / with members signed in', `${idle.rss.toFixed(0)} / ${signedIn.rss.toFixed(0)} MiB`),
      row(
        'RSS peak during the flood (sampled / VmHWM)',
        `${peakRss.toFixed(0)} / ${after.peak.toFixed(0)} MiB`,
      ),
      row('RSS after the flood', `${after.rss.toFixed(0)} MiB`),
      row('flood answers', counts(floodAnswers)),
      row('flood duration', `${seconds.toFixed(0)} s (${(LOGINS / seconds).toFixed(0)} logins/s)`),
      row('members’ answers during the flood', counts(memberAnswers)),
      row('members still signed in afterwards (session and tokens)', `${stillSignedIn} of ${MEMBERS}`),
      '',
    ].join('\n'),
  )
  await infra.call('close').catch(() => {})
}

try {
  await main()
} finally {
  await stopAll()
}
