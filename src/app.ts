import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import AjvCompiler from '@fastify/ajv-compiler'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
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
import { loggerOptions, RequestLog } from './logger.js'
import type { KeyValueStore } from './session/kv.js'

/** The HTTP server's time limits (docs/limits.md). */
export const SERVER_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
} as const

export interface AppOptions {
  /**
   * Where log lines go (synchronous stdout by default; the server passes `stdoutDestination()`); tests capture
   * them to prove no secret is logged.
   */
  logStream?: DestinationStream
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

const validatorsFromPool = AjvCompiler()

/**
 * Fastify's Ajv coerces types (`coerceTypes: 'array'`): a query string is all strings, so that is right there,
 * but in a JSON body it turns `{"accountId":["<id>"]}` into the string the schema wants. Bodies are validated
 * as sent: a value of the wrong JSON type is `400 bad_request`.
 */
const buildValidator: typeof validatorsFromPool = (externalSchemas, options) => {
  const coercing = validatorsFromPool(externalSchemas, options)
  // Fastify passes its Ajv (not JTD) options here.
  const ajv = options as { customOptions?: Record<string, unknown> } | undefined
  const exact = validatorsFromPool(externalSchemas, {
    ...ajv,
    customOptions: { ...ajv?.customOptions, coerceTypes: false },
  })
  return (route) => (route.httpPart === 'body' ? exact(route) : coercing(route))
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'The request took too long to arrive.'],
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'The request headers are too large.'],
}

/**
 * What Node's HTTP parser refuses (a malformed request, headers too large, too slow) never reaches a route.
 * Fastify's default handler logs the error at `trace` with the raw bytes received — the session cookie, a
 * callback's code and state. Here the log line names the kind of error only.
 */
function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'bad_request', 'Malformed request.']
  this.log.debug({ kind: err.code ?? 'unknown', status }, 'client error')
  if (socket.writable) {
    const body = JSON.stringify({ error: code, message })
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nCache-Control: no-store\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

/** Builds the BFF: infrastructure first, then the routes, all under the path of PUBLIC_URL. */
export async function buildApp(config: Config, opts: AppOptions = {}): Promise<FastifyInstance> {
  const logger = loggerOptions(config.logLevel)
  const app = Fastify({
    logger: opts.logStream ? { ...logger, stream: opts.logStream } : logger,
    logController: new RequestLog(),
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // HEAD must not run a GET handler: a HEAD on the callback would otherwise exchange the code.
    exposeHeadRoutes: false,
    // While closing, requests still reach the hooks: plugins/lifecycle.ts answers them in the contract's shape.
    return503OnClosing: false,
    bodyLimit: 64 * 1024,
    schemaController: { compilersFactory: { buildValidator } },
    clientErrorHandler,
    // A URL that does not decode (`/%ZZ`) gets the BFF's own error body and headers, not Fastify's echo of
    // the URL (it is answered before any hook runs).
    frameworkErrors: (_error, _request, reply) => {
      void reply
        .code(400 as never)
        .headers({ ...reply.server.securityHeaders, 'cache-control': 'no-store' })
        .send({ error: 'bad_request', message: 'The request is malformed.' } as never)
    },
    // Time limits (docs/limits.md): the headers within 10 s and the whole request within 30 s, checked every
    // second (Node checks every 30 s by default, which let slow headers hold a connection for almost a
    // minute); an idle keep-alive connection is closed after 72 s, longer than the idle timeout of common load
    // balancers (60 s), so that they never reuse a connection we are closing.
    http: { headersTimeout: SERVER_LIMITS.headersTimeoutMs, connectionsCheckingInterval: 1000 },
    requestTimeout: SERVER_LIMITS.requestTimeoutMs,
    keepAliveTimeout: SERVER_LIMITS.keepAliveTimeoutMs,
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Beyond this many open connections new ones are refused at once; the rest keep being served.
  app.server.maxConnections = config.maxConnections
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
