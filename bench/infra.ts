/**
 * The bench's upstreams, in a process of their own so that they cost the measured servers nothing: the EPCC
 * simulator (direct mode), the dev OpenID Provider for express-openid-connect, and the "carts upstream":
 * `GET /v2/carts` answered with a fixed EPCC page, every other path passed on to the simulator.
 * Driven by its parent over IPC (see `Rpc` in lib/proc.ts).
 */
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startEpccSimulator } from '../dev/epcc-sim/index.js'
import { startIdp } from '../dev/idp.js'
import { EXPRESS_CLIENT, EXPRESS_USER, type InfraReady } from './lib/fixtures.js'
import { serveRpc } from './lib/proc.js'

// EPCC's empty list page, as /v2/carts answers a member with no carts.
const CARTS_PAGE = JSON.stringify({
  data: [],
  meta: {
    page: { limit: 25, offset: 0, current: 1, total: 0 },
    results: { total: 0 },
  },
  links: {
    current: '/v2/carts?page[offset]=0&page[limit]=25',
    first: null,
    last: null,
    next: null,
    prev: null,
  },
})

const redirectUris = (process.env.BENCH_REDIRECT_URIS ?? '').split(',').filter(Boolean)
const expressCallback = process.env.BENCH_EXPRESS_CALLBACK ?? ''

const sim = await startEpccSimulator({ idp: 'direct', redirectUris })
const simApi = new URL(sim.apiUrl)

const upstream = createServer((req, res) => {
  if (req.method === 'GET' && (req.url === '/v2/carts' || req.url?.startsWith('/v2/carts?'))) {
    req.resume()
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(CARTS_PAGE),
    })
    res.end(CARTS_PAGE)
    return
  }
  const forwarded = httpRequest(
    {
      host: simApi.hostname,
      port: simApi.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: simApi.host },
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    },
  )
  forwarded.on('error', () => res.destroy())
  req.pipe(forwarded)
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

const idp = await startIdp({
  clients: [
    { client_id: EXPRESS_CLIENT.id, client_secret: EXPRESS_CLIENT.secret, redirect_uris: [expressCallback] },
  ],
  users: (email) => (email === EXPRESS_USER.email ? EXPRESS_USER : undefined),
})

const ready: InfraReady = {
  simApiUrl: sim.apiUrl,
  upstreamUrl,
  idpIssuer: idp.issuer,
  clientId: sim.clientId,
  clientSecret: sim.clientSecret,
}
serveRpc(
  {
    addMember: (m) => {
      const accounts = Number(m.accounts)
      return sim.addMember({ name: String(m.name), email: String(m.email), accounts }).id
    },
    directLogin: (m) => {
      sim.directLogin.memberId = String(m.memberId)
    },
    // The simulator logs every request it serves: clear it between slices so that it does not grow.
    clearLog: () => sim.clearLog(),
    close: async () => {
      upstream.close()
      upstream.closeAllConnections()
      await Promise.all([sim.close(), idp.close()])
    },
  },
  ready,
)
