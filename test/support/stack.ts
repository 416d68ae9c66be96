import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import {
  type EpccSimulator,
  type EpccSimulatorOptions,
  startEpccSimulator,
} from '../../dev/epcc-sim/index.js'
import { freePort } from '../../dev/net.js'
import { type AppOptions, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { type KeyValueStore, MemoryKeyValueStore } from '../../src/session/kv.js'
import { isPendingLoginKey } from '../../src/session/records.js'
import { RedisKeyValueStore } from '../../src/session/redis.js'
import { terminateTlsFor } from './browser.js'
import { startFront } from './front.js'

export const SESSION_SECRET = 'test-session-secret-0123456789abcdef'
export const FRONTEND = 'http://shop.test:8080'

/** Collects every log line the BFF writes, to prove that no secret reaches the log. */
export class LogCapture extends Writable {
  readonly lines: string[] = []
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
    done()
  }
  get text(): string {
    return this.lines.join('\n')
  }
  entries(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  }
}

export interface Stack {
  sim: EpccSimulator
  app: FastifyInstance
  /** Where the BFF listens, e.g. http://127.0.0.1:40123 (plus the PUBLIC_URL path, if any). */
  bff: string
  publicUrl: string
  logs: LogCapture
  deployment: Deployment
  /** How many live keys the BFF's store holds under `prefix` (`sess:`, `vault:`, `replaced:`, …). */
  countKeys(prefix: string): Promise<number>
  /** Starts another BFF process-alike on the same simulator and environment (a second replica). */
  replica(env?: Record<string, string>, kv?: KeyValueStore): Promise<{ app: FastifyInstance; bff: string }>
}

/**
 * Where the BFF runs: plain http with the memory store; https behind a TLS-terminating front (`TRUST_PROXY`,
 * `X-Forwarded-Proto: https`) with the memory store; https with Redis and two replicas behind a front that
 * balances each request across them. Cookie, session and proxy tests run the same assertions in each.
 */
export type Deployment = 'http' | 'https' | 'redis'
export const DEPLOYMENTS: readonly Deployment[] = ['http', 'https', 'redis']

/** Runs `body` once in each deployment, as a subtest named after it. */
export function inEachDeployment(t: Test, body: (t: Test, deployment: Deployment) => Promise<void>): void {
  for (const deployment of DEPLOYMENTS) t.test(`deployment: ${deployment}`, (t) => body(t, deployment))
}

export const REDIS_TEST_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'

export interface StackOptions {
  /** Plain http with the memory store by default. */
  deployment?: Deployment
  sim?: Partial<EpccSimulatorOptions>
  env?: Record<string, string>
  /** The path PUBLIC_URL carries ('' = served at the root). */
  basePath?: string
  kv?: KeyValueStore
  /** Load shedding is off in the harness (it shares its event loop with the simulator) unless given here. */
  loadShedding?: AppOptions['loadShedding']
  /**
   * EPCC as the BFF sees it: given the simulator's API address, the address of something in front of it (a
   * man-in-the-middle that rewrites chosen answers). The simulator's own API by default.
   */
  epccFront?: (apiUrl: string) => Promise<string>
  /** The first realm load may fail (EPCC is made to refuse it): the stack starts anyway, not ready. */
  realmMayFail?: boolean
}

/**
 * A real stack on loopback: the EPCC simulator (and its IdP), and the BFF listening on a port that
 * PUBLIC_URL names, so redirects travel over real sockets.
 */
export async function startStack(t: Test, opts: StackOptions = {}): Promise<Stack> {
  const basePath = opts.basePath ?? ''
  const deployment = opts.deployment ?? 'http'
  const port = await freePort()
  const frontPort = deployment === 'http' ? port : await freePort()
  const publicUrl = `${deployment === 'http' ? 'http' : 'https'}://127.0.0.1:${frontPort}${basePath}`
  const sim = await startEpccSimulator({
    idp: 'direct',
    redirectUris: [`${publicUrl}/oauth2/callback`],
    ...opts.sim,
  })
  t.teardown(() => sim.close())

  const baseEnv = {
    EPCC_BASE_URL: opts.epccFront ? await opts.epccFront(sim.apiUrl) : sim.apiUrl,
    EPCC_CLIENT_ID: sim.clientId,
    EPCC_CLIENT_SECRET: sim.clientSecret,
    PUBLIC_URL: publicUrl,
    FRONTEND_URL: FRONTEND,
    SESSION_SECRET,
    EPCC_TIMEOUT_MS: '1500',
    LOG_LEVEL: 'info',
    ...(deployment === 'http' ? {} : { TRUST_PROXY: 'true' }),
    ...opts.env,
  }
  // Replicas share one Redis under a key prefix of their own: other test processes use the same server.
  const prefix = `test:${process.pid}:${Math.random().toString(36).slice(2)}:`
  // The memory store the harness can count keys in, unless the store is Redis or given.
  const memory =
    deployment === 'redis' || opts.kv || Object.keys(opts.env ?? {}).some((k) => k.startsWith('REDIS_'))
      ? undefined
      : new MemoryKeyValueStore({ isPending: isPendingLoginKey })
  const kvFor = (given?: KeyValueStore): KeyValueStore | undefined =>
    given ?? (deployment === 'redis' ? new RedisKeyValueStore(REDIS_TEST_URL, { prefix }) : undefined)
  const countKeys = async (keyPrefix: string): Promise<number> => {
    if (memory) return memory.count(keyPrefix)
    if (deployment !== 'redis')
      throw new Error('countKeys: the store was passed in or configured by REDIS_* variables')
    const redis = new Redis(REDIS_TEST_URL)
    try {
      return (await redis.keys(`${prefix}${keyPrefix}*`)).length
    } finally {
      redis.disconnect()
    }
  }
  const logs = new LogCapture()
  const start = async (env: Record<string, string>, listenPort: number, kv?: KeyValueStore) => {
    const app = await buildApp(loadConfig(env, '/nonexistent'), {
      logStream: logs,
      kv,
      loadShedding: opts.loadShedding ?? false,
    })
    t.teardown(() => app.close())
    await app.listen({ host: '127.0.0.1', port: listenPort })
    const address = app.server.address()
    const actual = typeof address === 'object' && address ? address.port : listenPort
    return { app, bff: `http://127.0.0.1:${actual}${basePath}` }
  }
  const loadRealm = async (app: FastifyInstance) => {
    if (opts.realmMayFail) return app.realm.refresh().catch(() => {})
    // Setup, not an assertion: on a loaded machine the simulator (in this process) may miss the 1.5 s EPCC
    // budget once, and the BFF would load the realm again by itself a moment later.
    for (let attempt = 1; ; attempt++) {
      try {
        return await app.realm.refresh()
      } catch (err) {
        if (attempt === 3) throw err
      }
    }
  }
  const first = await start(baseEnv, port, kvFor(opts.kv ?? memory))
  await loadRealm(first.app)
  let bff = first.bff
  if (deployment !== 'http') {
    const upstreams = [first.bff]
    if (deployment === 'redis') {
      const second = await start(baseEnv, 0, kvFor())
      await loadRealm(second.app)
      upstreams.push(second.bff)
    }
    const front = await startFront(frontPort, () => upstreams.map((u) => new URL(u).origin), {
      proto: 'https',
    })
    t.teardown(() => front.close())
    terminateTlsFor(`127.0.0.1:${frontPort}`)
    bff = publicUrl
  }
  return {
    sim,
    app: first.app,
    bff,
    publicUrl,
    logs,
    deployment,
    countKeys,
    replica: async (env = {}, kv) => {
      const replica = await start({ ...baseEnv, ...env }, 0, kvFor(kv))
      await loadRealm(replica.app)
      return replica
    },
  }
}

/** Every secret the simulator handed out or the flow carried, for grepping responses and logs. */
export function secretsSeen(sim: EpccSimulator): string[] {
  const secrets = new Set<string>()
  for (const request of sim.log) {
    const auth = request.headers.authorization
    if (auth?.startsWith('Bearer ')) secrets.add(auth.slice('Bearer '.length))
    const accountToken = request.headers['ep-account-management-authentication-token']
    if (accountToken) secrets.add(accountToken)
    const body = request.body as { data?: Record<string, unknown> } | undefined
    for (const field of ['oauth_authorization_code', 'oauth_code_verifier']) {
      const value = body?.data?.[field]
      if (typeof value === 'string') secrets.add(value)
    }
  }
  return [...secrets].filter((s) => s.length >= 16)
}

export const API = { 'x-csrf': '1' } as const
