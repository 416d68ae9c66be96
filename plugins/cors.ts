import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'
import { STOREFRONT_REQUEST_HEADERS } from '../src/proxy.js'

/**
 * CORS with credentials for the storefront's origins only (contract §3.2); preflights need no `X-CSRF` and
 * admit the headers the official EPCC SDKs send (the proxy drops the credentials among them).
 * @see https://github.com/fastify/fastify-cors
 */
export default fp(
  async (app) => {
    const allowed = app.config.allowedOrigins
    await app.register(fastifyCors, {
      origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
      credentials: true,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: [...STOREFRONT_REQUEST_HEADERS],
      // What a storefront reads from proxied answers: cache validators and when to try again.
      exposedHeaders: ['ETag', 'Retry-After'],
      maxAge: 600,
    })
  },
  { name: 'cors', dependencies: ['config'] },
)
