/**
 * The BFF as src/server.ts builds it, from the dist/ directory in BENCH_BFF_BUILD: load shedding and its log
 * destination included.
 * `BENCH_LOAD_SHEDDING=off` turns shedding off, for builds before cb4c4f2, which shed on event-loop
 * utilisation: a closed-loop load generator keeps any server fully busy, so those tripped and, answering 50
 * connections with fast 503s, stayed tripped for the rest of the run.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

type AppModule = typeof import('../../src/app.js')
type ConfigModule = typeof import('../../src/config.js')
type LoggerModule = Partial<typeof import('../../src/logger.js')>

const build = process.env.BENCH_BFF_BUILD ?? join(import.meta.dirname, '../..')
const from = (path: string) => pathToFileURL(join(build, path)).href
const { buildApp } = (await import(from('src/app.js'))) as AppModule
const { loadConfig } = (await import(from('src/config.js'))) as ConfigModule

const { stdoutDestination } = (await import(from('src/logger.js'))) as LoggerModule

const config = loadConfig(process.env, '/nonexistent')
// Logging to stdout as src/server.ts does (builds before stdoutDestination logged synchronously).
const app = await buildApp(config, {
  ...(stdoutDestination ? { logStream: stdoutDestination() } : {}),
  ...(process.env.BENCH_LOAD_SHEDDING === 'off' ? { loadShedding: false } : {}),
})
await app.listen({ host: config.host, port: config.port })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
