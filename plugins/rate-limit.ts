import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { BffError } from '../src/errors.js'

/**
 * Per-address rate limits for the routes that start and finish logins (security.md ), keyed by
 * `request.ip` (so `TRUST_PROXY` decides whether `X-Forwarded-For` counts). Shared across replicas through
 * Redis when `REDIS_URL` is set; if Redis fails, requests pass (the session store answers 503 anyway).
 * Routes opt in with `config: { rateLimit: {} }`.
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
      ...(redis ? { redis, nameSpace: 'epcc-bff:rate:' } : {}),
      skipOnError: true,
      errorResponseBuilder: (_request, context) =>
        new BffError(context.statusCode, 'rate_limited', `Too many requests; retry after ${context.after}.`),
    })
  },
  { name: 'rate-limit', dependencies: ['config'] },
)
