import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { CONFIG_HELP, ConfigError, loadConfig } from './config.js'
import { stdoutDestination } from './logger.js'

/** The process: configuration, the app, graceful shutdown, listen. The only file that reads process.env. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) process.stderr.write(`config: ${problem}\n`)
      process.stderr.write(`config: ${CONFIG_HELP}\n`)
      process.exit(1)
    }
    throw err
  }

  const app = await buildApp(config, { logStream: stdoutDestination() })
  const drainMs = config.shutdownDrainS * 1000
  // On SIGTERM: readiness turns 503 at once and requests are still served for the drain period, so the load
  // balancer stops sending before we stop listening; then in-flight requests finish and the process exits.
  closeWithGrace({ delay: drainMs + 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal, drainMs }, 'draining')
    app.lifecycle.draining = true
    if (!err) await new Promise((resolve) => setTimeout(resolve, drainMs))
    await app.close()
    app.log.info('closed')
  })
  try {
    await app.listen({ host: config.host, port: config.port })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    process.stderr.write(`server: port ${config.port} is already in use: stop what holds it, or set PORT\n`)
    process.exit(1)
  }
}

await main()
