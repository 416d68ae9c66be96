/**
 * `npm run bench`: the BFF against the alternatives, side by side in one run (issues 8 and 15). Everything
 * listens on loopback, each server in its own process (compiled JS, NODE_ENV=production, LOG_LEVEL=info as shipped) so
 * that its CPU time per request is its own; each scenario alternates in short slices with its anchors: the
 * bare limit (a bare Fastify route, bare @fastify/http-proxy) and what a team writes in an afternoon
 * (servers/naive.ts). The headline is CPU µs per request and its ratio to the anchors, lower is better.
 *
 *   npm run bench                      the full run (about 4 minutes)
 *   npm run bench -- --quick           a shorter, noisier run (also BENCH_QUICK=1)
 *   npm run bench -- --only=proxy,login    some sections only
 *   npm run bench -- --profile=proxy   the BFF under one scenario's load with --cpu-prof, then its top functions
 *   npm run bench -- --before=dist/before --only=before   this build against an earlier copy of dist/
 *   --bff=<dir> measures another build as the BFF; --verbose prints every slice
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { freePort } from '../dev/net.js'
import { Browser, idpLogin } from '../test/support/browser.js'
import { summarizeProfile } from './cpuprofile.js'
import { EXPRESS_USER, type InfraReady, SESSION_SECRET } from './lib/fixtures.js'
import {
  alternate,
  type LoadOptions,
  median,
  slice,
  sliceCpuRatios,
  sliceP50Ratios,
  sliceRatios,
  summarize,
  type Target,
  type Totals,
} from './lib/load.js'
import { directLogin } from './lib/login.js'
import { cpuMicros, Rpc, startNode, stop, stopAll, waitFor } from './lib/proc.js'
import { fmt, loadTable, markdownTable, type Row } from './lib/table.js'

const DIST = join(import.meta.dirname, '..')
const args = process.argv.slice(2)
const flag = (name: string) => args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
const flagValue = (name: string) => flag(name)?.split('=', 2)[1]
const quick = flag('quick') !== undefined || process.env.BENCH_QUICK === '1'
const only = flagValue('only')?.split(',')
const profile = flagValue('profile')
const before = flagValue('before')
// --bff=<dir>: the build measured as "the BFF" (dist/ by default), e.g. one copied aside for a before/after.
const bffBuild = flagValue('bff') ?? DIST
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

const verbose = flag('verbose') !== undefined
// --rate=<req/s>: every target of a group gets the same offered load instead of all it can serve.
const rate = flagValue('rate') ? Number(flagValue('rate')) : undefined
const load: LoadOptions = quick
  ? { connections: 50, sliceS: 1, warmupS: 1, cycles: 2, verbose, rate }
  : { connections: 50, sliceS: 2, warmupS: 2, cycles: 6, verbose, rate }
const MEMORY_SESSIONS = quick ? { 1: 200, 100: 60, 10000: 20 } : { 1: 1000, 100: 300, 10000: 100 }
// Sessions logged in before the heap is measured: enough to fill the bounded memos of opened values
// (src/session/sealed.ts: 4,096 values, 16 M characters) and of parsed records (src/session/records.ts: 4,096),
// so that what is measured is what each further session adds, not the memos filling up.
const MEMORY_WARM = { 1: 4200, 100: 100, 10000: 100 }
const LOGIN_SECONDS = quick ? 2 : 6
const LOGIN_CONCURRENCY = 8
/** Target of the login section: BFF CPU time per complete login. */
const LOGIN_CPU_TARGET_MS = 3
/** The account token the afternoon anchor's sessions hold (it forwards it; the upstream does not check it). */
const NAIVE_ACCOUNT_TOKEN = 'bench-naive-account-token'

const SECTIONS = [
  'session-memory',
  'session-redis',
  'express',
  'proxy',
  'proxy-redis',
  'accounts',
  'login',
  'memory',
] as const
type Section = (typeof SECTIONS)[number]
const BASELINES = [
  'bare',
  'http-proxy',
  'express',
  'naive-session',
  'naive-session-redis',
  'naive-proxy',
  'naive-proxy-redis',
]
/** BFF profiles that run the Redis-store BFF. */
const REDIS_PROFILES = ['session-redis', 'proxy-redis']
const runs = (s: Section) => (profile ? false : !only || only.includes(s))

const log = (line: string) => process.stderr.write(`${line}\n`)
const CSRF = { 'x-csrf': '1' }

async function main(): Promise<void> {
  const ports = {
    bffMemory: await freePort(),
    bffRedis: await freePort(),
    bffBefore: await freePort(),
    bffBeforeRedis: await freePort(),
    bare: await freePort(),
    express: await freePort(),
    httpProxy: await freePort(),
    naiveMemory: await freePort(),
    naiveRedis: await freePort(),
    memMemory: await freePort(),
    memRedis: await freePort(),
  }
  const url = (port: number) => `http://127.0.0.1:${port}`
  const callbacks = [
    ports.bffMemory,
    ports.bffRedis,
    ports.bffBefore,
    ports.bffBeforeRedis,
    ports.memMemory,
    ports.memRedis,
  ].map((p) => `${url(p)}/oauth2/callback`)

  log('starting the simulator, the dev IdP and the carts upstream')
  const infra = new Rpc(
    startNode(join(DIST, 'bench/infra.js'), {
      env: {
        NODE_ENV: 'production',
        BENCH_REDIRECT_URIS: callbacks.join(','),
        BENCH_EXPRESS_CALLBACK: `${url(ports.express)}/callback`,
      },
    }),
  )
  const up = await infra.ready<InfraReady>()
  const member = {
    one: await infra.call<string>('addMember', { name: 'Ada Buyer', email: 'ada@example.com', accounts: 1 }),
    hundred: await infra.call<string>('addMember', {
      name: 'Bo Buyer',
      email: 'bo@example.com',
      accounts: 100,
    }),
    tenThousand: await infra.call<string>('addMember', {
      name: 'Cy Buyer',
      email: 'cy@example.com',
      accounts: 10_000,
    }),
  }
  const between = () => infra.call<void>('clearLog')
  const login = async (bff: string, memberId: string) => {
    await infra.call('directLogin', { memberId })
    return directLogin(bff)
  }

  const bffEnv = (port: number, extra: Record<string, string> = {}) => ({
    NODE_ENV: 'production',
    // As shipped: a request log line per request (BENCH_LOG_LEVEL=warn to see what logging costs).
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: url(port),
    FRONTEND_URL: 'http://127.0.0.1:9',
    SESSION_SECRET,
    EPCC_BASE_URL: up.upstreamUrl,
    EPCC_CLIENT_ID: up.clientId,
    EPCC_CLIENT_SECRET: up.clientSecret,
    // Every login of the bench comes from one address: the per-address login limit would cap it.
    RATE_LIMIT_PER_MINUTE: '100000000',
    // One session on 50 connections: the per-session and per-address API limits stay on (their cost is
    // measured) but are raised past what the load generator sends.
    API_RATE_LIMIT_PER_SESSION: '100000000',
    API_RATE_LIMIT_PER_ADDRESS: '100000000',
    SHUTDOWN_DRAIN_S: '1',
    ...extra,
  })
  // As the image runs it (Dockerfile CMD: --enable-source-maps), load shedding included; an earlier build
  // (--before) runs without it (servers/bff.ts). `build` is the dist/ directory whose src/app.js is started.
  const startBff = (
    port: number,
    extra: Record<string, string> = {},
    nodeArgs: string[] = [],
    build = bffBuild,
  ) =>
    startNode(join(DIST, 'bench/servers/bff.js'), {
      env: {
        ...bffEnv(port, extra),
        BENCH_BFF_BUILD: build,
        ...(build === bffBuild ? {} : { BENCH_LOAD_SHEDDING: 'off' }),
      },
      nodeArgs: ['--enable-source-maps', ...nodeArgs],
    })

  const profileDir = join(DIST, 'profiles')
  if (profile) {
    rmSync(profileDir, { recursive: true, force: true })
    mkdirSync(profileDir, { recursive: true })
  }
  // Which BFF runs with --cpu-prof: the Redis one for its own scenario, else the memory-store one.
  const cpuProf = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=200']
  const profiledBff = !profile
    ? undefined
    : REDIS_PROFILES.includes(profile)
      ? 'redis'
      : BASELINES.includes(profile)
        ? undefined
        : 'memory'
  const profiled = (which: 'memory' | 'redis') => (profiledBff === which ? cpuProf : [])

  // --before=<dir>: another build of the BFF (e.g. `dist/before`, copied before a change), measured against
  // this one in alternating slices, so that a before/after comparison does not depend on the machine's drift.
  // Its rows: those of the scenarios this run includes, or all of them with --only=before.
  const beforeAll = only?.includes('before') ?? false
  const beforeRuns = {
    sessionMemory: !!before && (beforeAll || runs('session-memory')),
    sessionRedis: !!before && (beforeAll || runs('session-redis')),
    proxyMemory: !!before && (beforeAll || runs('proxy')),
    proxyRedis: !!before && (beforeAll || runs('proxy-redis')),
    proxy10k: !!before && (beforeAll || runs('accounts')),
  }
  const beforeMemoryNeeded = beforeRuns.sessionMemory || beforeRuns.proxyMemory || beforeRuns.proxy10k
  const beforeRedisNeeded = beforeRuns.sessionRedis || beforeRuns.proxyRedis

  log('starting the BFFs')
  const memoryNeeded = ['session-memory', 'express', 'proxy', 'accounts', 'login'] as const
  const bffMemory =
    (profile && !REDIS_PROFILES.includes(profile)) || beforeMemoryNeeded || memoryNeeded.some(runs)
      ? startBff(ports.bffMemory, {}, profiled('memory'))
      : undefined
  const bffRedis =
    profiledBff === 'redis' || runs('session-redis') || runs('proxy-redis') || beforeRedisNeeded
      ? startBff(ports.bffRedis, { REDIS_URL }, profiled('redis'))
      : undefined
  if (bffMemory) await waitFor(`${url(ports.bffMemory)}/readyz`)
  if (bffRedis) await waitFor(`${url(ports.bffRedis)}/readyz`)
  const bffBefore = before && beforeMemoryNeeded ? startBff(ports.bffBefore, {}, [], before) : undefined
  const bffBeforeRedis =
    before && beforeRedisNeeded ? startBff(ports.bffBeforeRedis, { REDIS_URL }, [], before) : undefined
  if (bffBefore) await waitFor(`${url(ports.bffBefore)}/readyz`)
  if (bffBeforeRedis) await waitFor(`${url(ports.bffBeforeRedis)}/readyz`)

  const cookie = {
    one: bffMemory ? await login(url(ports.bffMemory), member.one) : '',
    tenThousand: bffMemory ? await login(url(ports.bffMemory), member.tenThousand) : '',
    redis: bffRedis ? await login(url(ports.bffRedis), member.one) : '',
    beforeOne: bffBefore ? await login(url(ports.bffBefore), member.one) : '',
    beforeTenThousand: bffBefore ? await login(url(ports.bffBefore), member.tenThousand) : '',
    beforeRedis: bffBeforeRedis ? await login(url(ports.bffBeforeRedis), member.one) : '',
  }
  // The bare route and the afternoon anchor answer exactly what the BFF answers.
  const sessionFrom = bffMemory
    ? { port: ports.bffMemory, cookie: cookie.one }
    : { port: ports.bffRedis, cookie: cookie.redis }
  const sessionJson =
    bffMemory || bffRedis
      ? await (
          await request(`${url(sessionFrom.port)}/session`, {
            headers: { ...CSRF, cookie: sessionFrom.cookie },
          })
        ).body.text()
      : '{}'

  log('starting the baselines')
  const baseline = (name: string, script: string, env: Record<string, string>, wanted: boolean) =>
    wanted || profile === name
      ? startNode(join(DIST, `bench/servers/${script}`), {
          env: { NODE_ENV: 'production', ...env },
          nodeArgs: profile === name ? cpuProf : [],
        })
      : undefined
  const bare = baseline(
    'bare',
    'bare-fastify.js',
    { PORT: String(ports.bare), BENCH_SESSION_JSON: sessionJson },
    runs('session-memory') || runs('session-redis'),
  )
  const httpProxy = baseline(
    'http-proxy',
    'http-proxy.js',
    { PORT: String(ports.httpProxy), BENCH_UPSTREAM: up.upstreamUrl },
    runs('proxy') || runs('proxy-redis'),
  )
  const express = baseline(
    'express',
    'express-oidc.js',
    { PORT: String(ports.express), BENCH_IDP_ISSUER: up.idpIssuer },
    runs('express'),
  )
  // The afternoon anchor: one process on @fastify/session's memory store, one on connect-redis.
  const naive = (port: number, env: Record<string, string>, wanted: boolean, profiles: string[]) => {
    const profiledHere = profile !== undefined && profiles.includes(profile)
    return wanted || profiledHere
      ? startNode(join(DIST, 'bench/servers/naive.js'), {
          env: { NODE_ENV: 'production', PORT: String(port), BENCH_UPSTREAM: up.upstreamUrl, ...env },
          nodeArgs: profiledHere ? cpuProf : [],
        })
      : undefined
  }
  const naiveMemory = naive(ports.naiveMemory, {}, runs('session-memory') || runs('proxy'), [
    'naive-session',
    'naive-proxy',
  ])
  const naiveRedis = naive(
    ports.naiveRedis,
    { BENCH_REDIS_URL: REDIS_URL },
    runs('session-redis') || runs('proxy-redis'),
    ['naive-session-redis', 'naive-proxy-redis'],
  )
  if (bare) await waitFor(`${url(ports.bare)}/session`)
  if (httpProxy) await waitFor(`${url(ports.httpProxy)}/api/epcc/v2/carts`)
  if (express) await waitFor(`${url(ports.express)}/session`, { accept: (status) => status === 401 })
  const unauthenticated = { accept: (status: number) => status === 401 }
  if (naiveMemory) await waitFor(`${url(ports.naiveMemory)}/session`, unauthenticated)
  if (naiveRedis) await waitFor(`${url(ports.naiveRedis)}/session`, unauthenticated)
  const expressCookie = express ? await expressLogin(url(ports.express)) : ''
  const naiveCookie = {
    memory: naiveMemory ? await naiveLogin(url(ports.naiveMemory), sessionJson) : '',
    redis: naiveRedis ? await naiveLogin(url(ports.naiveRedis), sessionJson) : '',
  }

  const target = (label: string, child: ChildProcess | undefined, href: string, headers = {}): Target => {
    if (!child?.pid) throw new Error(`${label}: process not running`)
    return { label, url: href, headers, pid: child.pid }
  }
  const t = {
    sessionMemory: () =>
      target('`GET /session`, memory store', bffMemory, `${url(ports.bffMemory)}/session`, {
        ...CSRF,
        cookie: cookie.one,
      }),
    sessionRedis: () =>
      target('`GET /session`, Redis', bffRedis, `${url(ports.bffRedis)}/session`, {
        ...CSRF,
        cookie: cookie.redis,
      }),
    bare: () => target('bare Fastify route, same JSON', bare, `${url(ports.bare)}/session`),
    naiveSession: () =>
      target('afternoon: @fastify/session, memory store', naiveMemory, `${url(ports.naiveMemory)}/session`, {
        cookie: naiveCookie.memory,
      }),
    naiveSessionRedis: () =>
      target('afternoon: @fastify/session + connect-redis', naiveRedis, `${url(ports.naiveRedis)}/session`, {
        cookie: naiveCookie.redis,
      }),
    express: () =>
      target('express-openid-connect `req.oidc.user`', express, `${url(ports.express)}/session`, {
        cookie: expressCookie,
      }),
    proxy: () =>
      target('proxied `GET /api/epcc/v2/carts`', bffMemory, `${url(ports.bffMemory)}/api/epcc/v2/carts`, {
        ...CSRF,
        cookie: cookie.one,
      }),
    proxyRedis: () =>
      target(
        'proxied `GET /api/epcc/v2/carts`, Redis',
        bffRedis,
        `${url(ports.bffRedis)}/api/epcc/v2/carts`,
        {
          ...CSRF,
          cookie: cookie.redis,
        },
      ),
    naiveProxy: () =>
      target(
        'afternoon: @fastify/session + @fastify/http-proxy, memory store',
        naiveMemory,
        `${url(ports.naiveMemory)}/api/epcc/v2/carts`,
        { cookie: naiveCookie.memory },
      ),
    naiveProxyRedis: () =>
      target(
        'afternoon: @fastify/session + connect-redis + @fastify/http-proxy',
        naiveRedis,
        `${url(ports.naiveRedis)}/api/epcc/v2/carts`,
        { cookie: naiveCookie.redis },
      ),
    httpProxy: () =>
      target(
        'bare @fastify/http-proxy, fixed header',
        httpProxy,
        `${url(ports.httpProxy)}/api/epcc/v2/carts`,
      ),
    session10k: () =>
      target('`GET /session`, 10,000 accounts', bffMemory, `${url(ports.bffMemory)}/session`, {
        ...CSRF,
        cookie: cookie.tenThousand,
      }),
    proxy10k: () =>
      target('proxied call, 10,000 accounts', bffMemory, `${url(ports.bffMemory)}/api/epcc/v2/carts`, {
        ...CSRF,
        cookie: cookie.tenThousand,
      }),
  }

  try {
    if (profile === 'login' && bffMemory?.pid) {
      // Complete logins instead of a load of one URL: the BFF's CPU per login, then its profile.
      await infra.call('directLogin', { memberId: member.one })
      const result = await measureLogins(url(ports.bffMemory), bffMemory.pid)
      log(
        `${fmt.int(result.rps)} logins/s, ${(result.cpuUs / result.logins / 1000).toFixed(2)} ms BFF CPU/login`,
      )
      await writeProfile(profileDir, [bffMemory])
      return
    }
    if (profile) {
      await runProfile(profile, t, profileDir, [
        bffMemory,
        bffRedis,
        bare,
        httpProxy,
        express,
        naiveMemory,
        naiveRedis,
      ])
      return
    }
    const rows: Row[] = []
    /** CPU µs/req of `a` over `b` on the totals, with the range of the per-cycle ratios. */
    const cpuRatio = (a: Totals, b: Totals) => {
      const ratio = summarize(a).cpuUsPerRequest / summarize(b).cpuUsPerRequest
      const perCycle = `(${range(sliceCpuRatios(a, b))})`
      return { ratio, text: `${fmt.ratio(ratio)} ${perCycle}`, bold: `**${fmt.ratio(ratio)}** ${perCycle}` }
    }
    // Our scenario, the bare limit and the afternoon anchor, alternated together; the target is on the CPU
    // ratio to the bare limit (lower is better).
    const group = async (
      section: string,
      ours: Target,
      bareLimit: Target,
      afternoon: Target,
      max: number,
    ) => {
      log(`measuring ${section}: ${ours.label} vs ${bareLimit.label} vs ${afternoon.label}`)
      const [a, b, c] = await alternate([ours, bareLimit, afternoon], { ...load, between })
      const vsBare = cpuRatio(a!, b!)
      rows.push({
        scenario: ours.label,
        summary: summarize(a!),
        ratio: vsBare.bold,
        afternoon: cpuRatio(a!, c!).text,
        target: `≤ ${fmt.ratio(max)}`,
        met: vsBare.ratio <= max,
      })
      rows.push({ scenario: `↳ ${bareLimit.label}`, summary: summarize(b!) })
      rows.push({ scenario: `↳ ${afternoon.label}`, summary: summarize(c!) })
    }

    if (runs('session-memory'))
      await group('session-memory', t.sessionMemory(), t.bare(), t.naiveSession(), 2.2)
    if (runs('session-redis'))
      await group('session-redis', t.sessionRedis(), t.bare(), t.naiveSessionRedis(), 2.8)
    if (runs('express')) {
      const [ours, theirs] = [t.sessionMemory(), t.express()]
      log(`measuring express: ${ours.label} vs ${theirs.label}`)
      const [a, b] = await alternate([ours, theirs], { ...load, between })
      // Its target stays on throughput (≥ 8× the req/s of express-openid-connect); the CPU ratio leads.
      const rpsRatio = summarize(a!).rps / summarize(b!).rps
      rows.push({
        scenario: `${ours.label}, against express-openid-connect`,
        summary: summarize(a!),
        ratio: `${cpuRatio(a!, b!).bold} of express; req/s ${fmt.ratio(rpsRatio)} (${range(sliceRatios(a!, b!))})`,
        target: 'req/s ≥ 8×',
        met: rpsRatio >= 8,
      })
      rows.push({ scenario: `↳ ${theirs.label}`, summary: summarize(b!) })
    }
    if (runs('proxy')) await group('proxy', t.proxy(), t.httpProxy(), t.naiveProxy(), 1.4)
    if (runs('proxy-redis'))
      await group('proxy-redis', t.proxyRedis(), t.httpProxy(), t.naiveProxyRedis(), 1.7)
    const beforeRows: Row[] = []
    if (before) {
      const b = (
        child: ChildProcess | undefined,
        port: number,
        label: string,
        path: string,
        cookie: string,
      ) => target(`${label}, before`, child, `${url(port)}${path}`, { ...CSRF, cookie })
      const carts = '/api/epcc/v2/carts'
      const pairs: Array<[boolean, () => [Target, Target]]> = [
        [
          beforeRuns.sessionMemory,
          () => [
            t.sessionMemory(),
            b(bffBefore, ports.bffBefore, '`GET /session`, memory store', '/session', cookie.beforeOne),
          ],
        ],
        [
          beforeRuns.sessionRedis,
          () => [
            t.sessionRedis(),
            b(bffBeforeRedis, ports.bffBeforeRedis, '`GET /session`, Redis', '/session', cookie.beforeRedis),
          ],
        ],
        [
          beforeRuns.proxyMemory,
          () => [
            t.proxy(),
            b(bffBefore, ports.bffBefore, 'proxied `GET /api/epcc/v2/carts`', carts, cookie.beforeOne),
          ],
        ],
        [
          beforeRuns.proxyRedis,
          () => [
            t.proxyRedis(),
            b(
              bffBeforeRedis,
              ports.bffBeforeRedis,
              'proxied `GET /api/epcc/v2/carts`, Redis',
              carts,
              cookie.beforeRedis,
            ),
          ],
        ],
        [
          beforeRuns.proxy10k,
          () => [
            t.proxy10k(),
            b(bffBefore, ports.bffBefore, 'proxied call, 10,000 accounts', carts, cookie.beforeTenThousand),
          ],
        ],
      ]
      for (const [wanted, make] of pairs) {
        if (!wanted) continue
        const [now, then] = make()
        log(`measuring before/after: ${now.label}`)
        const [a, c] = await alternate([{ ...now, label: `${now.label}, after` }, then], { ...load, between })
        beforeRows.push({
          scenario: a!.label,
          summary: summarize(a!),
          ratio: `${cpuRatio(a!, c!).bold}; req/s ${fmt.ratio(summarize(a!).rps / summarize(c!).rps)}`,
        })
        beforeRows.push({ scenario: `↳ ${c!.label}`, summary: summarize(c!) })
      }
    }
    if (runs('accounts')) {
      for (const [many, one] of [
        [t.session10k(), t.sessionMemory()],
        [t.proxy10k(), t.proxy()],
      ] as const) {
        log(`measuring accounts: ${many.label} vs ${one.label}`)
        const [a, b] = await alternate([many, { ...one, label: `${one.label}, 1 account` }], {
          ...load,
          between,
        })
        const sa = summarize(a!)
        const sb = summarize(b!)
        // The median of the per-cycle ratios: a burst of load from elsewhere skews one cycle, not the result.
        const p50Ratios = sliceP50Ratios(a!, b!)
        const p50Ratio = median(p50Ratios)
        rows.push({
          scenario: many.label,
          summary: sa,
          ratio: `p50 **${fmt.ratio(p50Ratio)}** (${range(p50Ratios)}), req/s ${fmt.ratio(sa.rps / sb.rps)}`,
          target: 'p50 within 15 %',
          met: Math.abs(p50Ratio - 1) <= 0.15,
        })
        rows.push({ scenario: `↳ ${sb.label}`, summary: sb })
      }
    }
    const tables: string[] = []
    if (rows.length > 0) tables.push(loadTable(rows))
    if (beforeRows.length > 0) tables.push(loadTable(beforeRows, '× before (per-cycle range)'))

    if (runs('login') && bffMemory?.pid) {
      log('measuring complete logins')
      await infra.call('directLogin', { memberId: member.one })
      const result = await measureLogins(url(ports.bffMemory), bffMemory.pid)
      await between()
      const cpuMs = result.cpuUs / result.logins / 1000
      tables.push(
        markdownTable(
          [
            'complete login (direct mode)',
            'BFF CPU ms/login',
            'target',
            '',
            'logins/s',
            'p50 ms',
            'p99 ms',
            'errors',
          ],
          [
            [
              `${LOGIN_CONCURRENCY} browsers at once, ${LOGIN_SECONDS} s`,
              cpuMs.toFixed(2),
              `≤ ${LOGIN_CPU_TARGET_MS} ms`,
              cpuMs <= LOGIN_CPU_TARGET_MS ? 'met' : '**missed**',
              fmt.int(result.rps),
              fmt.ms(result.p50),
              fmt.ms(result.p99),
              fmt.int(result.errors),
            ],
          ],
        ),
      )
    }

    if (runs('memory')) {
      log('measuring memory per session')
      tables.push(await measureMemory(ports, url, up, member, infra))
    }

    const header = [
      `Run ${new Date().toISOString()} · Node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
      `${load.connections} connections, ${load.cycles} cycles of ${load.sliceS} s slices per group (order reversed every cycle), ${load.warmupS} s warm-up each${quick ? ' (--quick)' : ''}${rate ? `, ${rate} req/s offered to every target (--rate)` : ', as many requests as each target serves'}`,
      'Headline: CPU µs per 2xx answer of the server process, and its ratio (lower is better) to the bare limit (a bare Fastify route with the same JSON; bare @fastify/http-proxy 11.6.3) and to the afternoon anchor (Fastify 5 + @fastify/cookie + @fastify/session 11.1.3 defaults, memory store or connect-redis 10, + @fastify/http-proxy); ratios on totals, per-cycle range in brackets.',
      `Servers: compiled JS, NODE_ENV=production, each in its own process; the BFF as src/server.ts builds it, with load shedding, rate limits and LOG_LEVEL=${process.env.BENCH_LOG_LEVEL ?? 'info'} (one line per request, read from a pipe).`,
      'Proxy upstream: a fixed `GET /v2/carts` page served by the bench (the simulator behind it for everything else).',
    ]
    process.stdout.write(`${header.join('  \n')}\n\n${tables.join('\n\n')}\n`)
  } finally {
    await infra.call('close').catch(() => {})
    await stopAll()
  }

  async function expressLogin(base: string): Promise<string> {
    const browser = new Browser()
    const host = new URL(base).host
    const callback = await idpLogin(browser, `${base}/login`, EXPRESS_USER, (u) =>
      u.href.startsWith(`${base}/callback`),
    )
    const answer = await browser.fetch(callback)
    await answer.body?.cancel()
    const value = browser.cookie(host, 'appSession')
    if (!value) throw new Error(`express-openid-connect login failed: ${answer.status}`)
    const check = await browser.fetch(`${base}/session`)
    if (check.status !== 200) throw new Error(`express-openid-connect session: ${check.status}`)
    await check.body?.cancel()
    return `appSession=${value}`
  }
}

/** Logs the afternoon anchor in with the BFF's `GET /session` body; its session cookie. */
async function naiveLogin(base: string, sessionJson: string): Promise<string> {
  const answer = await request(`${base}/bench/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session: JSON.parse(sessionJson), accountToken: NAIVE_ACCOUNT_TOKEN }),
  })
  await answer.body.dump()
  const raw = answer.headers['set-cookie']
  const value = (Array.isArray(raw) ? raw[0] : raw)?.split(';', 1)[0]
  if (answer.statusCode !== 204 || !value)
    throw new Error(`afternoon anchor login failed: ${answer.statusCode}`)
  return value
}

function range(values: number[]): string {
  const finite = values.filter(Number.isFinite)
  return `${fmt.ratio(Math.min(...finite))}–${fmt.ratio(Math.max(...finite))}`
}

/** Complete logins from `LOGIN_CONCURRENCY` browsers at once for `LOGIN_SECONDS`, after a short warm-up. */
async function measureLogins(bff: string, pid: number) {
  const run = async (seconds: number) => {
    const latencies: number[] = []
    let errors = 0
    const endAt = performance.now() + seconds * 1000
    const cpuBefore = cpuMicros(pid)
    const started = performance.now()
    await Promise.all(
      Array.from({ length: LOGIN_CONCURRENCY }, async () => {
        while (performance.now() < endAt) {
          const t0 = performance.now()
          try {
            await directLogin(bff)
            latencies.push(performance.now() - t0)
          } catch {
            errors++
          }
        }
      }),
    )
    const elapsed = (performance.now() - started) / 1000
    latencies.sort((a, b) => a - b)
    return {
      logins: latencies.length,
      rps: latencies.length / elapsed,
      p50: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN,
      p99: latencies[Math.floor(latencies.length * 0.99)] ?? Number.NaN,
      errors,
      cpuUs: cpuMicros(pid) - cpuBefore,
    }
  }
  await run(1)
  return run(LOGIN_SECONDS)
}

async function measureMemory(
  ports: { memMemory: number; memRedis: number },
  url: (port: number) => string,
  up: InfraReady,
  member: { one: string; hundred: string; tenThousand: string },
  infra: Rpc,
): Promise<string> {
  const env = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    FRONTEND_URL: 'http://127.0.0.1:9',
    SESSION_SECRET,
    EPCC_BASE_URL: up.upstreamUrl,
    EPCC_CLIENT_ID: up.clientId,
    EPCC_CLIENT_SECRET: up.clientSecret,
    RATE_LIMIT_PER_MINUTE: '100000000',
  }
  const child = new Rpc(
    startNode(join(DIST, 'bench/memory.js'), {
      nodeArgs: ['--expose-gc'],
      env: {
        BENCH_BFF_ENV: JSON.stringify(env),
        BENCH_MEMORY_PORT: String(ports.memMemory),
        BENCH_REDIS_PORT: String(ports.memRedis),
        BENCH_REDIS_URL: REDIS_URL,
      },
    }),
  )
  await child.ready()
  const rows: string[][] = []
  try {
    for (const [accounts, memberId] of [
      [1, member.one],
      [100, member.hundred],
      [10_000, member.tenThousand],
    ] as const) {
      const n = MEMORY_SESSIONS[accounts]
      await infra.call('directLogin', { memberId })
      // Logins first, so that what is created once (implicit token, compiled code, the full memo) is not counted.
      for (let i = 0; i < MEMORY_WARM[accounts]; i++) await directLogin(url(ports.memMemory))
      for (let i = 0; i < 20; i++) await directLogin(url(ports.memRedis))
      await child.call('redisBytes')
      await infra.call('clearLog')
      const before = await child.call<number>('heap')
      for (let i = 0; i < n; i++) await directLogin(url(ports.memMemory))
      const after = await child.call<number>('heap')
      for (let i = 0; i < n; i++) await directLogin(url(ports.memRedis))
      await infra.call('clearLog')
      const redis =
        await child.call<Record<string, { keys: number; bytes: number; valueChars: number }>>('redisBytes')
      const sess = redis.sess ?? { keys: 0, bytes: 0, valueChars: 0 }
      const vault = redis.vault ?? { keys: 0, bytes: 0, valueChars: 0 }
      const other = Object.entries(redis).filter(([kind]) => kind !== 'sess' && kind !== 'vault')
      rows.push([
        fmt.int(accounts),
        fmt.int(n),
        fmt.bytes((after - before) / n),
        fmt.bytes((sess.bytes + vault.bytes) / n),
        `${fmt.bytes(sess.bytes / Math.max(1, sess.keys))} (value ${fmt.int(sess.valueChars / Math.max(1, sess.keys))} chars)`,
        `${fmt.bytes(vault.bytes / Math.max(1, vault.keys))} (value ${fmt.int(vault.valueChars / Math.max(1, vault.keys))} chars)`,
        other.length ? other.map(([kind, v]) => `${kind}: ${v.keys}`).join(', ') : 'none',
      ])
    }
  } finally {
    await child.call('close').catch(() => {})
    await stop(child.child)
  }
  return markdownTable(
    [
      'accounts of the member',
      'sessions',
      'heap per session (memory store)',
      'Redis per session',
      'Redis: session record key',
      'Redis: token vault key',
      'other keys left',
    ],
    rows,
  )
}

/** Runs one scenario's load against a BFF started with --cpu-prof, stops it, and prints its top functions. */
async function runProfile(
  name: string,
  t: Record<string, () => Target>,
  dir: string,
  bffs: Array<ChildProcess | undefined>,
): Promise<void> {
  const byName: Record<string, () => Target> = {
    'session-memory': t.sessionMemory!,
    'session-redis': t.sessionRedis!,
    proxy: t.proxy!,
    'proxy-redis': t.proxyRedis!,
    'accounts-session': t.session10k!,
    'accounts-proxy': t.proxy10k!,
    bare: t.bare!,
    'http-proxy': t.httpProxy!,
    express: t.express!,
    'naive-session': t.naiveSession!,
    'naive-session-redis': t.naiveSessionRedis!,
    'naive-proxy': t.naiveProxy!,
    'naive-proxy-redis': t.naiveProxyRedis!,
  }
  const make = byName[name]
  if (!make) throw new Error(`--profile takes login or one of ${Object.keys(byName).join(', ')}`)
  const target = make()
  log(`profiling ${target.label}`)
  await slice(target, 3, load.connections)
  const result = await slice(target, quick ? 5 : 15, load.connections)
  log(
    `${fmt.int(result.requests / result.seconds)} req/s, ${fmt.int(result.cpuUs / result.requests)} µs CPU/req, ${result.errors} errors`,
  )
  await writeProfile(dir, bffs)
}

/** Stops the profiled processes (which writes their profiles) and prints the profile's top functions. */
async function writeProfile(dir: string, processes: Array<ChildProcess | undefined>): Promise<void> {
  for (const child of processes) if (child) await stop(child, 15_000)
  await sleep(200)
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error(`no .cpuprofile in ${dir}`)
  process.stdout.write(`${summarizeProfile(join(dir, file), 30)}\n\nprofile: ${join(dir, file)}\n`)
}

process.on('SIGINT', () => {
  void stopAll().then(() => process.exit(130))
})

main().catch(async (err: unknown) => {
  log(String((err as Error).stack ?? err))
  await stopAll()
  process.exit(1)
})
