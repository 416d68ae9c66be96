/**
 * `npm run demo`: the whole flow on loopback — the EPCC simulator with its upstream IdP, the BFF with
 * in-memory sessions, and a small storefront page on another port of the same site. Ctrl-C stops it all.
 * Ports: `DEMO_BFF_PORT` (3000) and `DEMO_SHOP_PORT` (3001).
 */
import { startDemo } from './demo-stack.js'

const demo = await startDemo({
  bffPort: Number(process.env.DEMO_BFF_PORT ?? 3000),
  shopPort: Number(process.env.DEMO_SHOP_PORT ?? 3001),
  logLevel: process.env.LOG_LEVEL ?? 'warn',
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
  Press Ctrl-C to stop.
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
