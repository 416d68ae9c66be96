import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { BffError } from '../src/errors.js'
import { connectRedis } from '../src/session/redis-connection.js'

/**
 * Per-address rate limits for the routes that start and finish logins (security.md ), keyed by
 * `request.ip` (so `TRUST_PROXY` decides whether `X-Forwarded-For` counts). Shared across replicas through
 * the session store's Redis when one is set (one node, Sentinel or Cluster: the limiter's script touches one
 * key); if Redis fails, requests pass (the session store answers 503 anyway).
 * Routes opt in with `config: { rateLimit: {} }`.
 * @see https://github.com/fastify/fastify-rate-limit
 */
export default fp(
  async (app) => {
    const redis = app.config.redis ? connectRedis(app.config.redis) : undefined
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
