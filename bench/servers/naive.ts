/**
 * Anchor: what a team writes in an afternoon. Fastify 5 with @fastify/cookie and @fastify/session at their
 * defaults (the session id signed in a cookie, the session saved again on every response since `rolling`
 * is on), the session in @fastify/session's memory store or, with BENCH_REDIS_URL, in Redis through
 * connect-redis; `GET /session` returns what login stored, and @fastify/http-proxy forwards `/api/epcc/*`
 * with the implicit token and the session's account token. No logger, no rate limits, no token renewal.
 * `POST /bench/login` stands in for the login: it stores the BFF's `GET /session` body and an account token.
 */
import fastifyCookie from '@fastify/cookie'
import proxy from '@fastify/http-proxy'
import fastifySession from '@fastify/session'
import { Type } from '@fastify/type-provider-typebox'
import { RedisStore } from 'connect-redis'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { SessionBody } from '../lib/session-body.js'

declare module 'fastify' {
  interface Session extends Partial<SessionBody> {
    accountToken?: string
  }
}
// `request.session`, as @fastify/session types it. Only because this file shares a TypeScript program with
// the BFF, whose plugins/session.ts gives `request.session` a type of its own; a team's project would not.
const session = (request: { session: unknown }) => request.session as fastifySession.FastifySessionObject

const redisUrl = process.env.BENCH_REDIS_URL
const store = redisUrl
  ? new RedisStore({ client: await createClient({ url: redisUrl }).connect(), prefix: 'bench-naive:' })
  : undefined

const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: 'bench-naive-session-secret-0123456789abcdef',
  cookie: { secure: false },
  ...(store ? { store } : {}),
})

app.post<{ Body: { session: SessionBody; accountToken: string } }>('/bench/login', async (request, reply) => {
  const { member, activeAccount, accountCount, expiresAt } = request.body.session
  Object.assign(session(request), { member, activeAccount, accountCount, expiresAt })
  session(request).accountToken = request.body.accountToken
  return reply.code(204).send()
})

const Unauthenticated = Type.Object({ error: Type.String() })
app.get(
  '/session',
  { schema: { response: { 200: SessionBody, 401: Unauthenticated } } },
  async (request, reply) => {
    const { member, activeAccount, accountCount, expiresAt } = session(request)
    if (!member) return reply.code(401).send({ error: 'unauthenticated' })
    return { member, activeAccount, accountCount, expiresAt }
  },
)

await app.register(proxy, {
  upstream: process.env.BENCH_UPSTREAM ?? '',
  prefix: '/api/epcc',
  preHandler: async (request, reply) => {
    if (!session(request).member) return reply.code(401).send({ error: 'unauthenticated' })
  },
  replyOptions: {
    rewriteRequestHeaders: (request, { cookie: _cookie, ...headers }) => ({
      ...headers,
      authorization: 'Bearer bench-fixed-implicit-token',
      'ep-account-management-authentication-token': session(request).accountToken ?? '',
    }),
  },
})

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
