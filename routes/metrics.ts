import type { FastifyPluginAsync } from 'fastify'

/** `GET /metrics` (contract §3.3): Prometheus text format. */
const metrics: FastifyPluginAsync = async (app) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text format)',
        tags: ['operations'],
        produces: ['text/plain'],
        response: { 200: { description: 'Prometheus text exposition format', type: 'string' } },
      },
      config: { pressureHandler: () => undefined },
    },
    async (_request, reply) => {
      const registry = app.metrics.registry
      return reply.type(registry.contentType).send(await registry.metrics())
    },
  )
}

export default metrics
