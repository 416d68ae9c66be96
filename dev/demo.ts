/**
 * `npm run demo`: the whole flow on loopback — the EPCC simulator with its upstream IdP, the BFF with
 * in-memory sessions, and a small storefront page on another port of the same site. Ctrl-C stops it all.
 * Ports: `DEMO_BFF_PORT` (3000) and `DEMO_SHOP_PORT` (3001); `LOG_LEVEL` (warn) of the BFF.
 */
import { ConfigError } from '../src/config.js'
import { startDemo } from './demo-stack.js'
import { busyPortHint } from './net.js'

const bffPort = Number(process.env.DEMO_BFF_PORT ?? 3000)
const shopPort = Number(process.env.DEMO_SHOP_PORT ?? 3001)
const demo = await startDemo({
  bffPort,
  shopPort,
  // `LOG_LEVEL=info npm run demo` shows every request the BFF serves.
  logLevel: process.env.LOG_LEVEL ?? 'warn',
}).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    // The demo sets everything but LOG_LEVEL itself: a bad one is named with its allowed values.
    for (const problem of err.problems) process.stderr.write(`demo: ${problem}\n`)
    process.exit(1)
  }
  const hint = busyPortHint(err, { [bffPort]: 'DEMO_BFF_PORT', [shopPort]: 'DEMO_SHOP_PORT' })
  if (!hint) throw err
  process.stderr.write(`demo: ${hint}, e.g. DEMO_BFF_PORT=4000 DEMO_SHOP_PORT=4001 npm run demo\n`)
  process.exit(1)
})
const { ada, nora, rex, password } = demo.logins

process.stdout.write(`
epcc-oidc-bff demo is running.

  Storefront:   ${demo.shopUrl}
  Start login:  ${demo.bffUrl}/auth/login?returnTo=${encodeURIComponent(demo.shopUrl)}

  Demo logins at the IdP (password for all: ${password}):
    ${ada.email}    member of ${ada.accounts.length} accounts
    ${nora.email}   member of no account (shows "no_accounts")
    ${rex.email}    the IdP refuses this user (shows "access_denied")

  EPCC simulator: ${demo.sim.apiUrl} (authorization host ${demo.sim.authUrl})
  Another login after "Log out": "Sign in as someone else" (the IdP remembers who signed in last).
  Request logs: LOG_LEVEL=info npm run demo. Press Ctrl-C to stop.
`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await demo.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
