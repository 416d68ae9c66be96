import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

/**
 * CORS with credentials for the storefront's origins only (contract §3.2); preflights need no `X-CSRF`.
 * @see https://github.com/fastify/fastify-cors
 */
export default fp(
  async (app) => {
    const allowed = app.config.allowedOrigins
    await app.register(fastifyCors, {
      origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
      credentials: true,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Content-Type', 'X-CSRF'],
      maxAge: 600,
    })
  },
  { name: 'cors', dependencies: ['config'] },
)
