/**
 * Baseline: a bare Fastify route that returns the BFF's `GET /session` body (given in BENCH_SESSION_JSON)
 * with the same response schema, no plugins, no logger. The framework's own limit for that answer.
 */
import { Type } from '@fastify/type-provider-typebox'
import Fastify from 'fastify'

const body = JSON.parse(process.env.BENCH_SESSION_JSON ?? '{}') as Record<string, unknown>
const Account = Type.Object({ id: Type.String(), name: Type.String() })
const SessionBody = Type.Object({
  member: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
  activeAccount: Account,
  accountCount: Type.Integer(),
  expiresAt: Type.String({ format: 'date-time' }),
})

const app = Fastify({ logger: false })
app.get('/session', { schema: { response: { 200: SessionBody } } }, async () => body)
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
