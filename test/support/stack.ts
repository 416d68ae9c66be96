import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import {
  type EpccSimulator,
  type EpccSimulatorOptions,
  startEpccSimulator,
} from '../../dev/epcc-sim/index.js'
import { freePort } from '../../dev/net.js'
import { type AppOptions, buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import type { KeyValueStore } from '../../src/session/kv.js'

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
  /** Starts another BFF process-alike on the same simulator and environment (a second replica). */
  replica(env?: Record<string, string>, kv?: KeyValueStore): Promise<{ app: FastifyInstance; bff: string }>
}

export interface StackOptions {
  sim?: Partial<EpccSimulatorOptions>
  env?: Record<string, string>
  /** The path PUBLIC_URL carries ('' = served at the root). */
  basePath?: string
  kv?: KeyValueStore
  /** Load shedding is off in the harness (it shares its event loop with the simulator) unless given here. */
  loadShedding?: AppOptions['loadShedding']
}

/**
 * A real stack on loopback: the EPCC simulator (and its IdP), and the BFF listening on a port that
 * PUBLIC_URL names, so redirects travel over real sockets.
 */
export async function startStack(t: Test, opts: StackOptions = {}): Promise<Stack> {
  const basePath = opts.basePath ?? ''
  const port = await freePort()
  const publicUrl = `http://127.0.0.1:${port}${basePath}`
  const sim = await startEpccSimulator({
    idp: 'direct',
    redirectUris: [`${publicUrl}/oauth2/callback`],
    ...opts.sim,
  })
  t.teardown(() => sim.close())

  const baseEnv = {
    EPCC_BASE_URL: sim.apiUrl,
    EPCC_CLIENT_ID: sim.clientId,
    EPCC_CLIENT_SECRET: sim.clientSecret,
    PUBLIC_URL: publicUrl,
    FRONTEND_URL: FRONTEND,
    SESSION_SECRET,
    EPCC_TIMEOUT_MS: '1500',
    LOG_LEVEL: 'info',
    ...opts.env,
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
  const { app, bff } = await start(baseEnv, port, opts.kv)
  await app.realm.refresh()
  return {
    sim,
    app,
    bff,
    publicUrl,
    logs,
    replica: async (env = {}, kv) => {
      const replica = await start({ ...baseEnv, ...env }, 0, kv)
      await replica.app.realm.refresh()
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
