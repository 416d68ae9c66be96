import fp from 'fastify-plugin'
import { Metrics } from '../src/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/**
 * Prometheus metrics (served by `GET /metrics`): every request's duration by route pattern — never by raw
 * URL, which could carry ids — plus the domain counters other plugins feed.
 * @see https://github.com/siimon/prom-client
 */
export default fp(
  async (app) => {
    const metrics = new Metrics()
    app.decorate('metrics', metrics)
    app.addHook('onResponse', (request, reply, done) => {
      metrics.observeRequest(request.routeOptions.url, request.method, reply.statusCode, reply.elapsedTime)
      done()
    })
  },
  { name: 'metrics' },
)
