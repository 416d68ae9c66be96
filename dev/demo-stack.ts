/**
 * The demo as a function: the EPCC simulator with its real upstream IdP and seeded members, the BFF with
 * in-memory sessions, and the storefront page on another port. `dev/demo.ts` runs it from the command line;
 * the browser tests start it on free ports.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import ts from 'typescript'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { type EpccSimulator, type SimMember, startEpccSimulator } from './epcc-sim/index.js'

export const DEMO_PASSWORD = 'demo-password'

export interface DemoOptions {
  /** The host name in every URL and the address the BFF and the storefront listen on. */
  host?: string
  bffPort?: number
  shopPort?: number
  /**
   * The storefront's host name, when it differs from `host` (the BFF then still allows only this origin).
   * Both must stay on one site: the session cookie is `SameSite=Lax`, so a cross-site page's `fetch` goes
   * without it.
   */
  shopHost?: string
  /** pino level of the BFF (`warn` by default, so the demo's terminal stays readable). */
  logLevel?: string
  /** Where the BFF's log lines go (stdout by default). */
  logStream?: Writable
}

export interface DemoLogins {
  /** Member of 12 accounts. */
  ada: SimMember
  /** Member of no account: the login ends with `no_accounts`. */
  nora: SimMember
  /** Refused by the IdP: the login ends with `access_denied`. */
  rex: SimMember
  password: string
}

export interface Demo {
  bffUrl: string
  shopUrl: string
  sim: EpccSimulator
  app: FastifyInstance
  logins: DemoLogins
  /** Stops the storefront, the BFF and the simulator (with its IdP). */
  close(): Promise<void>
}

export async function startDemo(opts: DemoOptions = {}): Promise<Demo> {
  const host = opts.host ?? 'localhost'
  const bffPort = opts.bffPort ?? 3000
  const shopPort = opts.shopPort ?? 3001
  const bffUrl = `http://${host}:${bffPort}`
  const shopUrl = `http://${opts.shopHost ?? host}:${shopPort}`

  // On 127.0.0.1 while the BFF is on `localhost`: the return from the IdP is a cross-site navigation, as
  // in production, where the IdP and EPCC live on other sites than the shop.
  const sim = await startEpccSimulator({
    host: '127.0.0.1',
    idp: 'real',
    redirectUris: [`${bffUrl}/oauth2/callback`],
    profiles: [{ name: 'Acme SSO' }],
    listLogins: true,
  })
  const closers: Array<() => Promise<void>> = [() => sim.close()]
  const close = async () => {
    for (const stop of closers.reverse()) await stop()
  }
  try {
    const logins = seedDemoMembers(sim)
    const config = loadConfig(
      {
        EPCC_BASE_URL: sim.apiUrl,
        EPCC_CLIENT_ID: sim.clientId,
        PUBLIC_URL: bffUrl,
        FRONTEND_URL: shopUrl,
        LOGIN_ERROR_PATH: '/',
        SESSION_SECRET: 'demo-only-session-secret-change-me-0123456789',
        LOG_LEVEL: opts.logLevel ?? 'warn',
        PORT: String(bffPort),
      },
      '/nonexistent',
    )
    // No load shedding: the simulator, the IdP (and, in tests, the browser driver) share this event loop,
    // so its utilisation says nothing about the BFF's own load.
    const app = await buildApp(config, {
      loadShedding: false,
      ...(opts.logStream ? { logStream: opts.logStream } : {}),
    })
    closers.push(() => app.close())
    await app.listen({ host, port: bffPort })

    const shop = storefront(bffUrl)
    closers.push(() => closeServer(shop))
    await new Promise<void>((resolve, reject) => {
      shop.once('error', reject)
      shop.listen(shopPort, opts.shopHost ?? host, resolve)
    })
    return { bffUrl, shopUrl, sim, app, logins, close }
  } catch (err) {
    await close()
    throw err
  }
}

/** The demo's three members (the demo and `npm run sim`): one with 12 accounts, one with none, one refused. */
export function seedDemoMembers(sim: EpccSimulator): DemoLogins {
  const password = DEMO_PASSWORD
  const ada = sim.addMember({
    name: 'Ada Buyer',
    email: 'ada@example.com',
    password,
    accounts: [
      { name: 'Bluefuse Ltd' },
      { name: 'Acme Wholesale' },
      { name: 'Northwind Trading' },
      ...Array.from({ length: 9 }, (_, i) => ({ name: `Branch office ${i + 1}` })),
    ],
  })
  const nora = sim.addMember({ name: 'Nora Newcomer', email: 'nora@example.com', password, accounts: [] })
  const rex = sim.addMember({ name: 'Rex Refused', email: 'rex@example.com', password, accounts: 1 })
  sim.refuseLogin(rex.email)
  return { ada, nora, rex, password }
}

/** The typed browser client (client/index.ts) as the page loads it: plain ESM, types stripped. */
function clientModule(): string {
  const source = readFileSync(join(import.meta.dirname, '..', 'client', 'index.ts'), 'utf8')
  return ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText
}

/** Serves `dev/storefront/index.html` on every GET path, and the client at `/client.js`, told where the BFF is. */
function storefront(bffUrl: string): Server {
  const client = clientModule()
  const page = readFileSync(join(import.meta.dirname, 'storefront', 'index.html'), 'utf8').replace(
    '<script type="module">',
    `<script>window.BFF_URL = ${JSON.stringify(bffUrl)}</script>\n  <script type="module">`,
  )
  return createServer((req, res) => {
    if (req.method !== 'GET' || !(req.url ?? '/').startsWith('/')) {
      res.writeHead(405).end()
      return
    }
    if (req.url === '/client.js') {
      res
        .writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' })
        .end(client)
      return
    }
    if ((req.url ?? '/').startsWith('/favicon')) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page)
  })
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
