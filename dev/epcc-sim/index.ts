/**
 * An Elastic Path Commerce Cloud simulator for tests and the demo (epcc-api.md §4): the API on one port,
 * the `/oidc-idp/*` authorization host on a second, and (by default) a real upstream OpenID Provider.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Idp, startIdp } from '../idp.js'
import { apiRoutes } from './api.js'
import type { Route, SimContext } from './context.js'
import { type Fault, Faults } from './faults.js'
import {
  isRecord,
  parseRequest,
  type Quirks,
  type Req,
  type SimRequest,
  sendError,
  sendJson,
} from './http.js'
import { authRoutes, newClientSecret } from './oidc-idp.js'
import { shopperRoutes } from './shopper.js'
import {
  type ResolvedOptions,
  type SimAccount,
  type SimMember,
  type SimProfile,
  SimState,
  type TokenPaging,
} from './state.js'

export { DEFAULT_PASSWORD } from './state.js'
export type { Fault, Quirks, SimAccount, SimMember, SimRequest, TokenPaging }

export interface EpccSimulatorOptions {
  host?: string
  apiPort?: number
  authPort?: number
  /** The upstream IdP's port (`idp: 'real'`); any free one by default. */
  idpPort?: number
  /** The IdP's form lists every member with its password (the demo and `npm run sim`). */
  listLogins?: boolean
  clientId?: string
  clientSecret?: string
  storeId?: string
  realmId?: string
  settingsClientId?: string
  redirectUris: string[]
  profiles?: Array<{ id?: string; name: string }>
  idp?: 'real' | 'direct'
  implicitTokenTtlS?: number
  accountTokenTtlS?: number
  codeTtlS?: number
  tokenPageDefault?: number
  tokenPaging?: TokenPaging
}

export interface EpccSimulator {
  apiUrl: string
  authUrl: string
  idpUrl?: string
  clientId: string
  clientSecret: string
  realmId: string
  storeId: string
  settingsClientId: string
  profiles: Array<{ id: string; name: string }>
  addMember(m: {
    id?: string
    name: string
    email: string
    password?: string
    accounts?: Array<{ id?: string; name: string }> | number
  }): SimMember
  addAccount(a: { id?: string; name: string }): SimAccount
  refuseLogin(email: string): void
  directLogin: { memberId: string | null }
  log: SimRequest[]
  calls(method: string, pathPrefix: string): SimRequest[]
  clearLog(): void
  clock: { now(): number; advance(seconds: number): void }
  quirks: Quirks
  fault(f: Fault): void
  clearFaults(): void
  /** EPCC stops accepting every store token it issued so far. */
  revokeStoreTokens(): void
  /** How the token list treats `page[limit]`/`page[offset]` from now on. */
  setTokenPaging(mode: TokenPaging): void
  close(): Promise<void>
}

export const DEFAULT_STORE_ID = '45b93fd2-5c8e-4b0f-9f3a-6d2e1c0b7a11'
export const DEFAULT_REALM_ID = '447b6016-2d4c-4e8a-b1f7-3c9d5e6f7a21'
export const DEFAULT_PROFILE_ID = '6a1f3c2e-8b4d-4f6a-9c2e-1d3b5a7c9e31'
const SETTINGS_ID = '0b6f6a84-3c1d-4e2f-8a9b-7c6d5e4f3a41'

function resolve(o: EpccSimulatorOptions): ResolvedOptions {
  const pageDefault = o.tokenPageDefault ?? 25
  if (!Number.isInteger(pageDefault) || pageDefault < 1 || pageDefault > 100) {
    throw new Error('tokenPageDefault must be an integer from 1 to 100')
  }
  return {
    host: o.host ?? '127.0.0.1',
    apiPort: o.apiPort ?? 0,
    authPort: o.authPort ?? 0,
    clientId: o.clientId ?? 'sim-client-id',
    clientSecret: o.clientSecret ?? 'sim-client-secret',
    storeId: o.storeId ?? DEFAULT_STORE_ID,
    realmId: o.realmId ?? DEFAULT_REALM_ID,
    settingsId: SETTINGS_ID,
    settingsClientId: o.settingsClientId ?? 'account-management',
    redirectUris: [...o.redirectUris],
    idp: o.idp ?? 'real',
    implicitTokenTtlS: o.implicitTokenTtlS ?? 3600,
    accountTokenTtlS: o.accountTokenTtlS ?? 86400,
    codeTtlS: o.codeTtlS ?? 300,
    tokenPageDefault: pageDefault,
  }
}

/** The members as the IdP's form lists them. */
function listedLogins(state: SimState) {
  return [...state.members.values()].map((m) => ({
    email: m.email,
    password: m.password,
    note: state.isRefused(m.email)
      ? 'refused by the identity provider'
      : m.accounts.length === 0
        ? 'member of no account'
        : `member of ${m.accounts.length} account${m.accounts.length === 1 ? '' : 's'}`,
  }))
}

async function listen(server: Server, host: string, port: number): Promise<string> {
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      ok()
    })
  })
  const { port: actual } = server.address() as AddressInfo
  return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`
}

function closeServer(server: Server): Promise<void> {
  return new Promise((ok) => {
    if (!server.listening) return ok()
    server.close(() => ok())
    server.closeAllConnections()
  })
}

export async function startEpccSimulator(options: EpccSimulatorOptions): Promise<EpccSimulator> {
  const opts = resolve(options)
  const profiles: SimProfile[] = (options.profiles ?? [{ id: DEFAULT_PROFILE_ID, name: 'Acme SSO' }]).map(
    (p) => {
      const id = p.id ?? randomUUID()
      return {
        id,
        name: p.name,
        idpClientId: `epcc-${id}`,
        idpClientSecret: newClientSecret(),
        createdAt: new Date().toISOString(),
      }
    },
  )
  const state = new SimState(opts, profiles)
  if (options.tokenPaging) state.tokenPaging = options.tokenPaging
  const faults = new Faults()
  const ctx: SimContext = { state, apiUrl: '', authUrl: '', idpUrl: undefined }

  const handler =
    (routes: Route[], control: boolean) =>
    (raw: IncomingMessage, res: ServerResponse): void => {
      serve(routes, control, raw, res).catch((err: unknown) => {
        if (!res.headersSent) sendError(res, state.quirks, 500, { detail: `simulator error: ${String(err)}` })
        else res.destroy()
      })
    }

  async function serve(routes: Route[], control: boolean, raw: IncomingMessage, res: ServerResponse) {
    const req = await parseRequest(raw, (control ? ctx.apiUrl : ctx.authUrl) || 'http://sim.invalid')
    if (control && req.path.startsWith('/__sim/')) return controlSurface(req, res)
    const entry: SimRequest = {
      at: state.clock.now(),
      method: req.method,
      path: req.path,
      query: req.query,
      headers: req.headers,
      body: req.body,
      status: 0,
    }
    state.log.push(entry)
    res.on('finish', () => {
      entry.status = res.statusCode
    })
    // A request cut off mid-body reached EPCC all the same (logged, status 0) but gets no answer.
    if (req.aborted) return void res.destroy()
    if (state.quirks.accessControlHeaders) {
      res.setHeader('access-control-allow-origin', '*')
      res.setHeader('access-control-allow-headers', '*')
      res.setHeader('access-control-expose-headers', '*')
    }
    const fault = faults.take(req.method, req.path)
    if (fault && !(await faults.apply(fault, res, state.quirks))) return
    for (const r of routes) {
      const m = r.pattern.exec(req.path)
      if (m && r.method === req.method) {
        await r.handler(
          ctx,
          req,
          res,
          m.slice(1).map((s) => decodeURIComponent(s)),
        )
        return
      }
    }
    const known = routes.some((r) => r.pattern.test(req.path))
    sendError(res, state.quirks, known ? 405 : 404, { detail: `no route for ${req.method} ${req.path}` })
  }

  /**
   * `/__sim/*` on the API port, for the demo and out-of-process use; never logged, never faulted:
   * `GET|DELETE /__sim/log`, `POST /__sim/clock/advance {seconds}`,
   * `POST /__sim/faults {path, regex?, method?, kind, status?, delayMs?, retryAfterS?, times?}`,
   * `DELETE /__sim/faults`, `PATCH /__sim/quirks {<quirk>: boolean}`, `GET /__sim/members`.
   */
  function controlSurface(req: Req, res: ServerResponse) {
    const body = isRecord(req.body) ? req.body : {}
    const key = `${req.method} ${req.path}`
    switch (key) {
      case 'GET /__sim/log':
        return sendJson(res, 200, { data: state.log })
      case 'DELETE /__sim/log':
        state.log.length = 0
        return sendJson(res, 200, { data: [] })
      case 'POST /__sim/clock/advance': {
        const seconds = Number(body.seconds)
        if (!Number.isFinite(seconds)) return sendJson(res, 400, { error: 'seconds must be a number' })
        state.clock.advance(seconds)
        return sendJson(res, 200, { now: state.clock.now() })
      }
      case 'POST /__sim/faults': {
        const path = typeof body.path === 'string' ? body.path : ''
        try {
          faults.add({
            kind: body.kind as Fault['kind'],
            path: body.regex === true ? new RegExp(path) : path,
            ...(typeof body.method === 'string' ? { method: body.method } : {}),
            ...(typeof body.status === 'number' ? { status: body.status } : {}),
            ...(typeof body.delayMs === 'number' ? { delayMs: body.delayMs } : {}),
            ...(typeof body.retryAfterS === 'number' ? { retryAfterS: body.retryAfterS } : {}),
            ...(typeof body.times === 'number' ? { times: body.times } : {}),
          })
        } catch (err) {
          return sendJson(res, 400, { error: String(err) })
        }
        return sendJson(res, 201, { ok: true })
      }
      case 'DELETE /__sim/faults':
        faults.clear()
        return sendJson(res, 200, { ok: true })
      case 'PATCH /__sim/quirks': {
        for (const k of Object.keys(state.quirks) as Array<keyof Quirks>) {
          if (typeof body[k] === 'boolean') state.quirks[k] = body[k]
        }
        return sendJson(res, 200, state.quirks)
      }
      case 'GET /__sim/members':
        return sendJson(res, 200, {
          data: [...state.members.values()].map((m) => ({
            id: m.id,
            name: m.name,
            email: m.email,
            password: m.password,
            accountCount: m.accounts.length,
          })),
        })
      default:
        return sendJson(res, 404, { error: `no control route ${key}` })
    }
  }

  const apiServer = createServer(handler([...apiRoutes, ...shopperRoutes], true))
  const authServer = createServer(handler(authRoutes, false))
  let idp: Idp | undefined
  try {
    ctx.apiUrl = await listen(apiServer, opts.host, opts.apiPort)
    ctx.authUrl = await listen(authServer, opts.host, opts.authPort)
    if (opts.idp === 'real') {
      idp = await startIdp({
        host: opts.host,
        ...(options.idpPort !== undefined ? { port: options.idpPort } : {}),
        ...(options.listLogins ? { listedLogins: () => listedLogins(state) } : {}),
        clients: profiles.map((p) => ({
          client_id: p.idpClientId,
          client_secret: p.idpClientSecret,
          redirect_uris: [
            `${ctx.authUrl}/oidc-idp/callback/stores/${opts.storeId}/authentication-realms/${opts.realmId}/oidc-profiles/${p.id}`,
          ],
        })),
        users: (email) => {
          const m = state.memberByEmail(email)
          return m && { sub: m.id, email: m.email, password: m.password, refused: state.isRefused(email) }
        },
      })
      ctx.idpUrl = idp.issuer
    }
  } catch (err) {
    await Promise.all([closeServer(apiServer), closeServer(authServer), idp?.close()])
    throw err
  }

  let closing: Promise<void> | undefined
  const sim: EpccSimulator = {
    apiUrl: ctx.apiUrl,
    authUrl: ctx.authUrl,
    ...(ctx.idpUrl ? { idpUrl: ctx.idpUrl } : {}),
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    realmId: opts.realmId,
    storeId: opts.storeId,
    settingsClientId: opts.settingsClientId,
    profiles: profiles.map((p) => ({ id: p.id, name: p.name })),
    addMember: (m) => state.addMember(m),
    addAccount: (a) => state.addAccount(a),
    refuseLogin: (email) => state.refuseLogin(email),
    directLogin: state.directLogin,
    log: state.log,
    calls: (method, prefix) =>
      state.log.filter((r) => r.method === method.toUpperCase() && r.path.startsWith(prefix)),
    clearLog: () => {
      state.log.length = 0
    },
    clock: state.clock,
    quirks: state.quirks,
    fault: (f) => faults.add(f),
    clearFaults: () => faults.clear(),
    revokeStoreTokens: () => state.revokeStoreTokens(),
    setTokenPaging: (mode) => {
      state.tokenPaging = mode
    },
    close: () => {
      closing ??= (async () => {
        faults.close()
        await Promise.all([closeServer(apiServer), closeServer(authServer), idp?.close()])
      })()
      return closing
    },
  }
  return sim
}
