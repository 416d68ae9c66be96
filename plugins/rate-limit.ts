import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { BffError } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The `onRequest` hook of the session and proxy routes: a budget per session and one per client address
     * (docs/limits.md), `429 rate_limited` with `Retry-After` beyond either.
     */
    apiRateLimit(request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
}

const rateLimited = (after: string) =>
  new BffError(429, 'rate_limited', `Too many requests; retry after ${after}.`)

/** IPv6 clients are keyed by their /64: one host usually holds a whole /64 and can rotate through it. */
const IPV6_SUBNET = 64
/** Counters kept per limit in process memory (without Redis); the least recently used go first. */
const LOCAL_COUNTERS = 50_000

/**
 * Rate limits (security.md ), keyed by `request.ip` (so `TRUST_PROXY` decides whether
 * `X-Forwarded-For` counts), IPv6 addresses by /64. The routes that start and finish logins opt in with
 * `config: { rateLimit: {} }` (per address); the session and proxy routes add `app.apiRateLimit` (per
 * session and per address). Shared across replicas through Redis when `REDIS_URL` is set; if Redis fails,
 * requests pass (the session store answers 503 anyway).
 * @see https://github.com/fastify/fastify-rate-limit
 */
export default fp(
  async (app) => {
    const { redisUrl } = app.config.session
    const redis = redisUrl
      ? new Redis(redisUrl, {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          commandTimeout: 500,
          connectTimeout: 1000,
        })
      : undefined
    redis?.on('error', () => {}) // reported by the session store's client; the limiter fails open
    if (redis) app.addHook('onClose', async () => redis.disconnect())
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
    // The session's counter is keyed by a hash of its cookie, checked before the session is read: the store
    // never sees the session id in a key, and a forged cookie only spends the address's budget.
    const bySession = app.createRateLimit({
      max: perSession,
      timeWindow: 60_000,
      keyGenerator: (request) => {
        const cookie = request.cookies[cookieName] ?? ''
        return `session:${createHash('sha256').update(cookie).digest('base64url').slice(0, 22)}`
      },
    })
    const byAddress = app.createRateLimit({
      max: perAddress,
      timeWindow: 60_000,
      ipv6Subnet: IPV6_SUBNET,
    })
    app.decorate('apiRateLimit', async (request: FastifyRequest, reply: FastifyReply) => {
      const checks = [byAddress(request)]
      if (request.cookies[cookieName] !== undefined) checks.push(bySession(request))
      for (const result of await Promise.all(checks)) {
        if (!result.isAllowed && result.isExceeded) {
          reply.header('retry-after', String(result.ttlInSeconds))
          throw rateLimited(`${result.ttlInSeconds} seconds`)
        }
      }
    })
  },
  { name: 'rate-limit', dependencies: ['config'] },
)
