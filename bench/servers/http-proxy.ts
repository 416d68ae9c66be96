/**
 * Baseline: bare @fastify/http-proxy in front of the same upstream as the BFF's proxy, adding fixed
 * credentials headers; no session, no path rules, no logger.
 * @see https://github.com/fastify/fastify-http-proxy
 */
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const app = Fastify({ logger: false })
await app.register(proxy, {
  upstream: process.env.BENCH_UPSTREAM ?? '',
  prefix: '/api/epcc',
  replyOptions: {
    rewriteRequestHeaders: (_request, headers) => ({
      ...headers,
      authorization: 'Bearer bench-fixed-implicit-token',
      'ep-account-management-authentication-token': 'bench-fixed-account-token',
    }),
  },
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
