import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

/** Probes (contract §3.3): liveness depends on nothing; readiness on the session store and EPCC's realm. */
const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const [sessionStore, epcc] = await Promise.all([
      app.kv.ping().then(
        () => true,
        () => false,
      ),
      app.realm.ready ||
        app.realm.refresh().then(
          () => true,
          () => false,
        ),
    ])
    const ready = sessionStore && epcc
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ready' : 'unavailable', checks: { sessionStore, epcc } })
  })
}

export default health
