/**
 * The BFF as src/server.ts builds it (from the dist/ directory in BENCH_BFF_BUILD), without load shedding.
 * A closed-loop load generator keeps any server's event loop saturated (that is what it measures), so the
 * shedder trips; and once tripped, answering 50 connections with fast 503s keeps the loop above its
 * threshold, so the BFF never serves again within the run.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

type AppModule = typeof import('../../src/app.js')
type ConfigModule = typeof import('../../src/config.js')

const build = process.env.BENCH_BFF_BUILD ?? join(import.meta.dirname, '../..')
const from = (path: string) => pathToFileURL(join(build, path)).href
const { buildApp } = (await import(from('src/app.js'))) as AppModule
const { loadConfig } = (await import(from('src/config.js'))) as ConfigModule

const config = loadConfig(process.env, '/nonexistent')
const app = await buildApp(config, { loadShedding: false })
await app.listen({ host: config.host, port: config.port })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
