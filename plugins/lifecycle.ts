import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * `draining`: set on SIGTERM; `/readyz` answers 503 so the load balancer stops sending, while requests still
     * run. `closing`: the listener is closing; a request that still arrives gets `503 shutting_down`.
     */
    lifecycle: { draining: boolean; closing: boolean }
  }
}

/**
 * The process's shutdown state, shared by the server entry point and the readiness probe. While draining,
 * every response closes its connection, so that no keep-alive connection holds the shutdown open and
 * clients reconnect to another replica.
 */
export default fp(
  async (app) => {
    const lifecycle = { draining: false, closing: false }
    app.decorate('lifecycle', lifecycle)
    // Fastify's own answer while closing (return503OnClosing, off in app.ts) bypasses every hook: a body of
    // its own shape, no Cache-Control. This one is ours, with Retry-After so the client tries another replica.
    app.addHook('preClose', (done) => {
      lifecycle.closing = true
      done()
    })
    app.addHook('onRequest', (_request, reply, done) => {
      if (!lifecycle.closing) return done()
      reply
        .code(503)
        .header('retry-after', '1')
        .header('cache-control', 'no-store')
        .header('connection', 'close')
        .send({ error: 'shutting_down', message: 'This server is shutting down; try again.' })
    })
    // At send time, not as the request comes: a request in flight when draining began must close its
    // connection too, or that keep-alive connection holds the shutdown open.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (lifecycle.draining) reply.header('connection', 'close')
      done(null, payload)
    })
  },
  { name: 'lifecycle' },
)
