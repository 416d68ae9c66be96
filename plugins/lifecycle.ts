import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Set on SIGTERM: `/readyz` answers 503 so the load balancer stops sending, while requests still run. */
    lifecycle: { draining: boolean }
  }
}

/**
 * The process's shutdown state, shared by the server entry point and the readiness probe. While draining,
 * every response closes its connection, so that no keep-alive connection holds the shutdown open and
 * clients reconnect to another replica.
 */
export default fp(
  async (app) => {
    const lifecycle = { draining: false }
    app.decorate('lifecycle', lifecycle)
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (lifecycle.draining) reply.header('connection', 'close')
      done(null, payload)
    })
  },
  { name: 'lifecycle' },
)
