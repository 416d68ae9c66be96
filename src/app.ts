import type { Writable } from 'node:stream'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import adminPlugin from '../plugins/admin.js'
import configPlugin from '../plugins/config.js'
import corsPlugin from '../plugins/cors.js'
import csrfPlugin from '../plugins/csrf.js'
import epccPlugin from '../plugins/epcc.js'
import errorsPlugin from '../plugins/errors.js'
import lifecyclePlugin from '../plugins/lifecycle.js'
import metricsPlugin from '../plugins/metrics.js'
import openapiPlugin from '../plugins/openapi.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import securityHeadersPlugin from '../plugins/security-headers.js'
import sessionPlugin from '../plugins/session.js'
import storePlugin from '../plugins/store.js'
import underPressurePlugin, { type LoadSheddingOptions } from '../plugins/under-pressure.js'
import adminRoutes from '../routes/admin.js'
import authApiRoutes from '../routes/auth-api.js'
import callbackRoutes from '../routes/callback.js'
import healthRoutes from '../routes/health.js'
import loginRoutes from '../routes/login.js'
import metricsRoutes from '../routes/metrics.js'
import openapiRoutes from '../routes/openapi.js'
import proxyRoutes from '../routes/proxy.js'
import sessionRoutes from '../routes/session.js'
import type { Config, TrustProxy } from './config.js'
import { loggerOptions } from './logger.js'
import type { KeyValueStore } from './session/kv.js'

export interface AppOptions {
  /** Where log lines go (stdout by default); tests capture them to prove no secret is logged. */
  logStream?: Writable
  /** The store under sessions; the bounded memory store by default. */
  kv?: KeyValueStore
  /**
   * Load-shedding thresholds, or false for none. The default suits a process that only serves; the test
   * harness, which runs the simulator and its clients in the same event loop, turns it off.
   */
  loadShedding?: LoadSheddingOptions | false
}

/** A hop count trusts that many proxies in front of us (proxy-addr's semantics). */
function fastifyTrustProxy(
  value: TrustProxy,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof value === 'number' ? (_address, hop) => hop < value : value
}

/** Builds the BFF: infrastructure first, then the routes, all under the path of PUBLIC_URL. */
export async function buildApp(config: Config, opts: AppOptions = {}): Promise<FastifyInstance> {
  const logger = loggerOptions(config.logLevel)
  const app = Fastify({
    logger: opts.logStream ? { ...logger, stream: opts.logStream } : logger,
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // HEAD must not run a GET handler: a HEAD on the callback would otherwise exchange the code.
    exposeHeadRoutes: false,
    requestTimeout: 30_000,
    bodyLimit: 64 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>()
  // A text/plain POST is a CORS "simple request": refuse it instead of parsing it (security.md §0.4).
  app.removeContentTypeParser('text/plain')

  await app.register(configPlugin, { config })
  await app.register(lifecyclePlugin)
  await app.register(metricsPlugin)
  await app.register(errorsPlugin)
  await app.register(openapiPlugin)
  await app.register(underPressurePlugin, { thresholds: opts.loadShedding })
  await app.register(storePlugin, { kv: opts.kv })
  await app.register(epccPlugin)
  await app.register(securityHeadersPlugin)
  await app.register(corsPlugin)
  await app.register(rateLimitPlugin)
  await app.register(sessionPlugin)

  await app.register(
    async (scope) => {
      await scope.register(healthRoutes)
      await scope.register(metricsRoutes)
      await scope.register(openapiRoutes)
      await scope.register(loginRoutes)
      await scope.register(callbackRoutes)
      await scope.register(async (api) => {
        await api.register(csrfPlugin)
        await api.register(authApiRoutes)
        await api.register(sessionRoutes)
        await api.register(proxyRoutes)
      })
      // Without ADMIN_TOKEN there are no administration routes: every /admin/* path is 404.
      if (config.adminToken) {
        await scope.register(async (admin) => {
          await admin.register(adminPlugin)
          await admin.register(adminRoutes)
        })
      }
    },
    { prefix: config.basePath },
  )
  return app
}
