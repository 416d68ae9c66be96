import { CONFIG_HELP, type Config, ConfigError, loadConfig } from './config.js'
import { checkSetup } from './setup-check.js'

/**
 * `npm run check`: reads the configuration exactly as `npm start` does (environment over `.env`) and checks
 * it against the store without serving. One line per finding; exit code 0, or 1 when anything failed.
 */
async function main(): Promise<number> {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const problem of err.problems) process.stdout.write(`FAIL  configuration: ${problem}\n`)
    process.stdout.write(`      ${CONFIG_HELP}\n`)
    return 1
  }
  const findings = await checkSetup(config)
  for (const f of findings)
    process.stdout.write(
      `${f.level === 'fail' ? 'FAIL' : f.level}${' '.repeat(6 - f.level.length)}${f.text}\n`,
    )
  process.stdout.write(`\nregister this redirect_uri in the realm: ${config.redirectUri}\n`)
  const failed = findings.filter((f) => f.level === 'fail').length
  process.stdout.write(failed === 0 ? 'check passed\n' : `check failed: ${failed} problem(s)\n`)
  return failed === 0 ? 0 : 1
}

// Exits at once: the EPCC client's keep-alive sockets would hold the process a few seconds more.
process.exit(await main())
