import { hash } from 'node:crypto'
import { fastifyCookie } from '@fastify/cookie'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { BffError } from '../src/errors.js'
import { connectRedis, ReadyWait } from '../src/session/redis-connection.js'
import { addRouteHook } from './route-hooks.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A session or proxy route: limited per session and per client address (docs/limits.md), `429
     * rate_limited` with `Retry-After` beyond either, before the session is read.
     */
    apiRateLimit?: boolean
  }
}

const rateLimited = (after: string) =>
  new BffError(429, 'rate_limited', `Too many requests; retry after ${after}.`)

/** IPv6 clients are keyed by their /64: one host usually holds a whole /64 and can rotate through it. */
const IPV6_SUBNET = 64
/** Session-limit keys remembered for the cookies they hash (a cookie is about 100 characters). */
const REMEMBERED_SESSION_KEYS = 10_000
/** Counters kept per limit in process memory (without Redis); the least recently used go first. */
const LOCAL_COUNTERS = 50_000
/** How long the start waits for the limiter's Redis connection (a Sentinel is asked first, then the master). */
const STARTUP_WAIT_MS = 3000

/**
 * Rate limits, keyed by `request.ip` (so `TRUST_PROXY` decides whether `X-Forwarded-For` counts), IPv6
 * addresses by /64. The routes that start and finish logins opt in with `config: { rateLimit: {} }` (per
 * address); the session and proxy routes with `config: { apiRateLimit: true }` (per session and per address).
 * Shared across replicas through the session store's Redis when one is set (one node, Sentinel or Cluster: the
 * limiter's script touches one key); if Redis fails, requests pass (the session store answers 503 anyway).
 * @see https://github.com/fastify/fastify-rate-limit
 */
export default fp(
  async (app) => {
    if (app.config.trustProxy === true) {
      app.log.warn(
        'TRUST_PROXY=true takes the client address from the first X-Forwarded-For entry, which clients can set: ' +
          'rate limits count whatever they claim. Set the number of proxies in front, or their addresses.',
      )
    }
    const redis = app.config.redis ? connectRedis(app.config.redis) : undefined
    redis?.on('error', () => {}) // reported by the session store's client; the limiter fails open
    if (redis) {
      // The limiter's commands do not queue while the connection is down (they fail, and the request passes
      // uncounted): wait for the connection before listening, so that counting starts with the first request.
      const ready = new ReadyWait(redis)
      app.addHook('onReady', async () => {
        if (!(await ready.within(STARTUP_WAIT_MS))) {
          app.log.warn('Rate limits: Redis is not reachable yet; requests pass uncounted until it is.')
        }
      })
      app.addHook('onClose', async () => redis.disconnect())
    }
    // @fastify/rate-limit gives each route limit (and each `createRateLimit`) a store of its own, sized by that
    // route's options, not by the plugin's `cache`, which left every limit at its default of 5,000 counters:
    // the routes that opt in get the size here, before the plugin's own `onRoute` reads their options.
    app.addHook('onRoute', (route) => {
      const own = route.config?.rateLimit
      if (own && typeof own === 'object') {
        route.config = { ...route.config, rateLimit: { cache: LOCAL_COUNTERS, ...own } }
      }
    })
    await app.register(rateLimit, {
      global: false,
      max: app.config.rateLimitPerMinute,
      timeWindow: 60_000,
      ipv6Subnet: IPV6_SUBNET,
      cache: LOCAL_COUNTERS,
      ...(redis ? { redis, nameSpace: 'epcc-bff:rate:' } : {}),
      skipOnError: true,
      errorResponseBuilder: (_request, context) => rateLimited(context.after),
    })

    const { perSession, perAddress } = app.config.apiRateLimit
    const { cookieName } = app.config.session
    // The session's counter is keyed by a hash of its cookie, counted before the session is read (and before
    // @fastify/cookie parses cookies): the store never sees a session id in a key. Only a cookie the BFF signed
    // has a counter: a forged one (any value, up to the 16 KiB of the headers, a fresh one per request) only
    // spends the address's budget. Were it counted too, each would take a place among the remembered keys
    // below (10,000 forged cookies of 16 KiB held 160 MB) and among the counters, pushing out the counter of
    // a real session over its budget.
    const signer = app.sessionSigner
    const sessionCookie = (request: FastifyRequest) => {
      const header = request.headers.cookie
      const cookie = header ? fastifyCookie.parse(header)[cookieName] : undefined
      return cookie !== undefined && signer.unsign(cookie).valid ? cookie : undefined
    }
    // A browser sends the same cookie on every request: its key is remembered (bounded, oldest first out).
    const sessionKeys = new Map<string, string>()
    const sessionKey = (cookie: string) => {
      let key = sessionKeys.get(cookie)
      if (key === undefined) {
        key = `session:${hash('sha256', cookie, 'base64url').slice(0, 22)}`
        if (sessionKeys.size >= REMEMBERED_SESSION_KEYS)
          sessionKeys.delete(sessionKeys.keys().next().value ?? '')
        sessionKeys.set(cookie, key)
      }
      return key
    }
    // `createRateLimit` passes `cache` on to its store like a route's options, though its type does not list it.
    const localCounters: object = { cache: LOCAL_COUNTERS }
    const bySession = app.createRateLimit({
      max: perSession,
      ...localCounters,
      timeWindow: 60_000,
      keyGenerator: (request) => sessionKey(sessionCookie(request) ?? ''),
    })
    const byAddress = app.createRateLimit({
      max: perAddress,
      ...localCounters,
      timeWindow: 60_000,
      ipv6Subnet: IPV6_SUBNET,
    })
    const limit = async (request: FastifyRequest, reply: FastifyReply) => {
      const checks = [byAddress(request)]
      if (sessionCookie(request) !== undefined) checks.push(bySession(request))
      for (const result of await Promise.all(checks)) {
        if (!result.isAllowed && result.isExceeded) {
          reply.header('retry-after', String(result.ttlInSeconds))
          throw rateLimited(`${result.ttlInSeconds} seconds`)
        }
      }
    }
    // On the routes that opt in only. Added as each route is declared, before the session plugin adds its
    // read: a request over its limit costs no session read.
    app.addHook('onRoute', (route) => {
      if (!route.config?.apiRateLimit) return
      addRouteHook(route, 'onRequest', (request, reply, done) => {
        limit(request, reply).then(() => done(), done)
      })
    })
  },
  { name: 'rate-limit', dependencies: ['config', 'store'] },
)
