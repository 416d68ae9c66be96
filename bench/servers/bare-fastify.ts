/**
 * Baseline: a bare Fastify route that returns the BFF's `GET /session` body (given in BENCH_SESSION_JSON)
 * with the same response schema, no plugins, no logger. The framework's own limit for that answer.
 */
import Fastify from 'fastify'
import { SessionBody } from '../lib/session-body.js'

const body = JSON.parse(process.env.BENCH_SESSION_JSON ?? '{}') as Record<string, unknown>

const app = Fastify({ logger: false })
app.get('/session', { schema: { response: { 200: SessionBody } } }, async () => body)
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
