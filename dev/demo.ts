/**
 * `npm run demo`: the whole flow on loopback — the EPCC simulator with its upstream IdP, the BFF with
 * in-memory sessions, and a small storefront page on another port of the same site. Ctrl-C stops it all.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startEpccSimulator } from './epcc-sim/index.js'

const HOST = 'localhost'
const BFF_PORT = Number(process.env.DEMO_BFF_PORT ?? 3000)
const SHOP_PORT = Number(process.env.DEMO_SHOP_PORT ?? 3001)
const bffUrl = `http://${HOST}:${BFF_PORT}`
const shopUrl = `http://${HOST}:${SHOP_PORT}`

const sim = await startEpccSimulator({
  host: '127.0.0.1',
  idp: 'real',
  redirectUris: [`${bffUrl}/oauth2/callback`],
  profiles: [{ name: 'Acme SSO' }],
})
const password = 'demo-password'
const ada = sim.addMember({
  name: 'Ada Buyer',
  email: 'ada@example.com',
  password,
  accounts: [
    { name: 'Bluefuse Ltd' },
    { name: 'Acme Wholesale' },
    { name: 'Northwind Trading' },
    ...numbered(9),
  ],
})
sim.addMember({ name: 'Nora Newcomer', email: 'nora@example.com', password, accounts: [] })
sim.addMember({ name: 'Rex Refused', email: 'rex@example.com', password, accounts: 1 })
sim.refuseLogin('rex@example.com')

const config = loadConfig(
  {
    EPCC_BASE_URL: sim.apiUrl,
    EPCC_CLIENT_ID: sim.clientId,
    PUBLIC_URL: bffUrl,
    FRONTEND_URL: shopUrl,
    LOGIN_ERROR_PATH: '/',
    SESSION_SECRET: 'demo-only-session-secret-change-me-0123456789',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    PORT: String(BFF_PORT),
  },
  '/nonexistent',
)
const app = await buildApp(config)
await app.listen({ host: HOST, port: BFF_PORT })

const page = readFileSync(join(import.meta.dirname, 'storefront', 'index.html'), 'utf8').replace(
  '<script type="module">',
  `<script>window.BFF_URL = ${JSON.stringify(bffUrl)}</script>\n  <script type="module">`,
)
const shop = createServer((req, res) => {
  if (req.method !== 'GET' || !(req.url ?? '/').startsWith('/')) {
    res.writeHead(405).end()
    return
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page)
})
await new Promise<void>((resolve) => shop.listen(SHOP_PORT, HOST, resolve))

process.stdout.write(`
epcc-oidc-bff demo is running.

  Storefront:   ${shopUrl}
  Start login:  ${bffUrl}/auth/login?returnTo=${encodeURIComponent(shopUrl)}

  Demo logins at the IdP (password for all: ${password}):
    ${ada.email}   member of ${ada.accounts.length} accounts
    nora@example.com  member of no account (shows "no_accounts")
    rex@example.com   the IdP refuses this user (shows "access_denied")

  EPCC simulator: ${sim.apiUrl} (authorization host ${sim.authUrl})
  Press Ctrl-C to stop.
`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  shop.close()
  await app.close()
  await sim.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

function numbered(n: number) {
  return Array.from({ length: n }, (_, i) => ({ name: `Branch office ${i + 1}` }))
}
