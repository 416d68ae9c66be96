import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'

/** Probes (contract §3.3): liveness depends on nothing; readiness on the session store and EPCC's realm. */
const health: FastifyPluginAsyncTypebox = async (app) => {
  // Alive whatever the load: exempt from load shedding (a pressure handler that lets the request through).
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: 200 while the process runs',
        tags: ['operations'],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
      config: { pressureHandler: () => undefined },
    },
    async () => ({ status: 'ok' as const }),
  )

  const Readiness = Type.Object({
    status: Type.String(),
    checks: Type.Optional(Type.Object({ sessionStore: Type.Boolean(), epcc: Type.Boolean() })),
    /** Why EPCC's realm is not loaded (an operator's hint: never a token). */
    reason: Type.Optional(Type.String()),
  })
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the session store answers and EPCC was reached',
        tags: ['operations'],
        response: { 200: Readiness, 503: Readiness },
      },
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      if (app.lifecycle.draining) return reply.code(503).send({ status: 'draining' })
      // While shedding load, say so: the balancer sends elsewhere instead of getting 503s.
      if (app.hasDecorator('isUnderPressure') && app.isUnderPressure()) {
        return reply.code(503).send({ status: 'overloaded' })
      }
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
      const reason = epcc ? undefined : app.realm.problem
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'unavailable',
        checks: { sessionStore, epcc },
        ...(reason ? { reason } : {}),
      })
    },
  )
}

export default health
