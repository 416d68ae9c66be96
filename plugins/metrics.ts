import fp from 'fastify-plugin'
import { Metrics } from '../src/metrics.js'
import { addRouteHook } from './route-hooks.js'

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
    // Each route observes itself under its own pattern, known as it is declared; what no route matched is
    // observed by the not-found handler (plugins/errors.ts) as `unmatched`.
    app.addHook('onRoute', (route) => {
      const pattern = route.url
      addRouteHook(route, 'onResponse', (request, reply, done) => {
        metrics.observeRequest(pattern, request.method, reply.statusCode, reply.elapsedTime)
        done()
      })
    })
  },
  { name: 'metrics' },
)
