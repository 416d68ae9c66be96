/**
 * `npm run sim`: the EPCC simulator and its IdP on their own, seeded with the demo's members, for a BFF you
 * run yourself (`npm start`). Prints the environment to give it. Ctrl-C stops it.
 *
 *   npm run sim -- [--public-url http://localhost:3000] [--frontend-url http://localhost:3001] [--port 3100]
 *
 * The simulator accepts exactly one redirect_uri: `<public-url>/oauth2/callback`. Its API listens on
 * `--port`, its authorization host on the next port, the IdP on the one after (`--port 0`: any free ports).
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { seedDemoMembers } from './demo-stack.js'
import { DEFAULT_PROFILE_ID, startEpccSimulator } from './epcc-sim/index.js'
import { busyPortHint } from './net.js'

const USAGE = 'usage: npm run sim -- [--public-url URL] [--frontend-url URL] [--port N]'

function fail(message: string): never {
  process.stderr.write(`sim: ${message}\n`)
  process.exit(1)
}

let args: { 'public-url': string; 'frontend-url': string; port: string }
try {
  const { values } = parseArgs({
    options: {
      'public-url': { type: 'string', default: 'http://localhost:3000' },
      'frontend-url': { type: 'string', default: 'http://localhost:3001' },
      port: { type: 'string', default: '3100' },
    },
  })
  args = values
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`)
}

const port = Number(args.port)
if (!Number.isInteger(port) || port < 0 || port > 65533) fail(`--port must be a port number\n${USAGE}`)
const publicUrl = urlArg('--public-url', args['public-url'])
const frontendUrl = urlArg('--frontend-url', args['frontend-url'])

function urlArg(name: string, value: string): string {
  try {
    const url = new URL(value)
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href.replace(/\/+$/, '')
  } catch {}
  return fail(`${name} must be an http or https URL\n${USAGE}`)
}

const sim = await startEpccSimulator({
  host: '127.0.0.1',
  apiPort: port,
  authPort: port && port + 1,
  idpPort: port && port + 2,
  idp: 'real',
  redirectUris: [`${publicUrl}/oauth2/callback`],
  // A fixed profile id: a BFF that read the profiles keeps working across a restart of the simulator.
  profiles: [{ id: DEFAULT_PROFILE_ID, name: 'Acme SSO' }],
  listLogins: true,
}).catch((err: unknown) => {
  const hint = busyPortHint(err, { [port]: '--port', [port + 1]: '--port', [port + 2]: '--port' })
  return fail(hint ? `${hint} (npm run sim -- --port N uses N, N+1 and N+2)` : String(err))
})
const { ada, nora, rex, password } = seedDemoMembers(sim)
// A BFF on this machine listens on PUBLIC_URL's port; behind a proxy, PORT is the proxy's business.
const local = new URL(publicUrl)
const portLine = ['localhost', '127.0.0.1'].includes(local.hostname)
  ? `PORT=${local.port || (local.protocol === 'https:' ? 443 : 80)}\n`
  : ''

process.stdout.write(`EPCC simulator is running (API ${sim.apiUrl}, authorization host ${sim.authUrl}, IdP ${sim.idpUrl}).
It accepts one redirect_uri: ${publicUrl}/oauth2/callback

# Environment for \`npm start\` (save as .env, then: npm run build && npm run check && npm start)
EPCC_BASE_URL=${sim.apiUrl}
EPCC_CLIENT_ID=${sim.clientId}
PUBLIC_URL=${publicUrl}
FRONTEND_URL=${frontendUrl}
SESSION_SECRET=${randomBytes(36).toString('base64url')}
${portLine}
Logins at the IdP (password for all: ${password}):
  ${ada.email}    member of ${ada.accounts.length} accounts
  ${nora.email}   member of no account (the login ends with no_accounts)
  ${rex.email}    the IdP refuses this user (the login ends with access_denied)

Press Ctrl-C to stop.
`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await sim.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
