/**
 * The upstream OpenID Provider behind the EPCC simulator's OIDC profiles (dev and tests only).
 *
 * oidc-provider 9 with the authorization-code flow, `client_secret_basic`, scope `openid email` and an
 * `email` claim in the ID token, as EPCC's "Requirements for Authentication Providers" ask. The login
 * interaction is a tiny HTML form; consent is granted automatically.
 * @see https://github.com/panva/node-oidc-provider/blob/v9.x/docs/README.md
 */
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface IdpUser {
  sub: string
  email: string
  password: string
  refused?: boolean
}

export interface IdpClient {
  client_id: string
  client_secret: string
  redirect_uris: string[]
}

/** A login the form lists, so that a person trying the demo need not look it up. */
export interface IdpListedLogin {
  email: string
  password: string
  /** What signing in as this user shows, e.g. "member of 12 accounts". */
  note: string
}

export interface IdpOptions {
  host?: string
  port?: number
  clients: IdpClient[]
  users: (email: string) => IdpUser | undefined
  /** Logins the form lists (the demo and `npm run sim`); none by default. */
  listedLogins?: () => IdpListedLogin[]
}

export interface Idp {
  issuer: string
  close(): Promise<void>
}

// The parts of oidc-provider's (untyped) API this file touches.
interface Grant {
  addOIDCScope(scope: string): void
  save(): Promise<string>
}
interface OidcCtx {
  oidc: {
    result?: { consent?: { grantId?: string } }
    session: { accountId?: string; grantIdFor(clientId: string): string | undefined }
    client: { clientId: string }
    provider: Provider
  }
}
interface InteractionDetails {
  uid: string
  prompt: { name: string }
  params: Record<string, unknown>
}
interface Provider {
  Grant: {
    new (init: { clientId: string; accountId?: string }): Grant
    find(id: string): Promise<Grant | undefined>
  }
  callback(): (req: IncomingMessage, res: ServerResponse) => void
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    opts?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => Provider

let providerCtor: Promise<ProviderCtor> | undefined
let signingKey: JsonWebKey | undefined

// oidc-provider warns at import time that Node 20 is not its preferred LTS; the flow works on 20.19+.
// The warning is filtered while the module evaluates, without touching node_modules.
function loadProvider(): Promise<ProviderCtor> {
  providerCtor ??= (async () => {
    const warn = console.warn
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return
      warn.apply(console, args)
    }
    try {
      const specifier: string = 'oidc-provider'
      const mod = (await import(specifier)) as { default: ProviderCtor }
      return mod.default
    } finally {
      console.warn = warn
    }
  })()
  return providerCtor
}

// ID tokens are RS256 (the OIDC default every RP accepts). One key per process keeps start-up quick.
function rsaJwk(): JsonWebKey {
  if (!signingKey) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'dev-idp-rs256', alg: 'RS256', use: 'sig' }
  }
  return signingKey
}

interface Stored {
  payload: Record<string, unknown>
  expiresAt: number
}

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
])

/** A per-provider in-memory adapter (oidc-provider's own one warns on every start). */
function memoryAdapter() {
  const store = new Map<string, Stored>()
  const get = (key: string) => {
    const hit = store.get(key)
    if (hit && hit.expiresAt <= Date.now()) {
      store.delete(key)
      return undefined
    }
    return hit?.payload
  }
  return class Adapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity
      store.set(this.key(id), { payload, expiresAt })
      if (typeof payload.uid === 'string') store.set(`uid:${payload.uid}`, { payload: { id }, expiresAt })
      // Only what a grant issued is revoked with it (oidc-provider's own memory adapter does the same): an
      // interaction carries a grantId too, and must outlive the session that "Sign in as someone else" ends.
      if (GRANTABLE.has(this.model) && typeof payload.grantId === 'string') {
        const members = (get(`grant:${payload.grantId}`)?.keys as string[] | undefined) ?? []
        store.set(`grant:${payload.grantId}`, {
          payload: { keys: [...members, this.key(id)] },
          expiresAt: Infinity,
        })
      }
    }
    async find(id: string) {
      return get(this.key(id))
    }
    async findByUid(uid: string) {
      const ref = get(`uid:${uid}`)
      return typeof ref?.id === 'string' ? get(this.key(ref.id)) : undefined
    }
    async findByUserCode() {
      return undefined
    }
    async consume(id: string) {
      const payload = get(this.key(id))
      if (payload) payload.consumed = Math.floor(Date.now() / 1000)
    }
    async destroy(id: string) {
      store.delete(this.key(id))
    }
    async revokeByGrantId(grantId: string) {
      for (const key of (get(`grant:${grantId}`)?.keys as string[] | undefined) ?? []) store.delete(key)
      store.delete(`grant:${grantId}`)
    }
  }
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const PAGE_STYLE = `
body{font:16px/1.5 system-ui,sans-serif;color:#1d2733;background:#f3f5f8;margin:0;padding:3rem 1rem}
main{max-width:24rem;margin:0 auto;background:#fff;border:1px solid #d5dbe3;border-radius:10px;padding:1.5rem 1.75rem}
h1{font-size:1.3rem;margin:0 0 .25rem}.lead{color:#5a6675;margin:0 0 1rem;font-size:.9rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{box-sizing:border-box;width:100%;font:inherit;padding:.45rem .6rem;border:1px solid #b9c2cf;border-radius:6px}
button{font:inherit;width:100%;margin-top:1.1rem;padding:.5rem;border-radius:6px;border:1px solid #3661c9;background:#3d6fe0;color:#fff;cursor:pointer}
.error{color:#a31b1b;background:#fdeeee;border-radius:6px;padding:.4rem .6rem}
.logins{margin-top:1.5rem;font-size:.9rem}.logins table{border-collapse:collapse;width:100%}
.logins td{padding:.2rem .3rem;border-top:1px solid #e3e7ed}.logins code{background:#f3f5f8;padding:0 .25rem;border-radius:4px}
.use{width:auto;margin:0;padding:.1rem .5rem;background:#fff;color:#3661c9;font-size:.85rem}`

function loginsTable(logins: IdpListedLogin[]): string {
  if (logins.length === 0) return ''
  const rows = logins
    .map(
      (l) => `<tr><td><code>${escapeHtml(l.email)}</code></td><td>${escapeHtml(l.note)}</td>
<td><button type="button" class="use" data-email="${escapeHtml(l.email)}" data-password="${escapeHtml(l.password)}">Use</button></td></tr>`,
    )
    .join('\n')
  const passwords = [...new Set(logins.map((l) => l.password))]
  const password =
    passwords.length === 1 ? `<p>Password for all: <code>${escapeHtml(passwords[0] ?? '')}</code></p>` : ''
  return `<section class="logins" aria-label="Demo logins"><h2>Demo logins</h2>${password}
<table>${rows}</table></section>`
}

function loginPage(uid: string, email: string, logins: IdpListedLogin[], error?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · dev IdP</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${PAGE_STYLE}</style>
</head><body><main>
<h1>Sign in</h1>
<p class="lead">Development identity provider behind the EPCC simulator.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" value="${escapeHtml(email)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button id="sign-in" type="submit">Sign in</button>
</form>
${loginsTable(logins)}
</main>
${
  logins.length > 0
    ? `<script>for (const b of document.querySelectorAll('.use')) b.onclick = () => {
  document.getElementById('email').value = b.dataset.email
  document.getElementById('password').value = b.dataset.password
}</script>`
    : ''
}
</body></html>`
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

function sendHtml(res: ServerResponse, status: number, html: string) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  })
  res.end(html)
}

export async function startIdp(opts: IdpOptions): Promise<Idp> {
  const Provider = await loadProvider()
  const host = opts.host ?? '127.0.0.1'
  // sub → email, filled at login, so findAccount can answer for the tokens it issues.
  const emailBySub = new Map<string, string>()
  let provider: Provider | undefined
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined

  const server = createServer((req, res) => {
    interaction(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendHtml(res, 500, `<p>${escapeHtml(String(err))}</p>`)
      else res.destroy()
    })
  })

  async function interaction(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(path)
    if (!match || !provider) {
      handle?.(req, res)
      return
    }
    const details = await provider.interactionDetails(req, res)
    if (req.method === 'GET' && details.prompt.name === 'login') {
      const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : ''
      sendHtml(res, 200, loginPage(details.uid, hint, opts.listedLogins?.() ?? []))
      return
    }
    if (req.method === 'GET') {
      // Any other prompt (consent) is granted for these first-party clients.
      await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true })
      return
    }
    if (req.method !== 'POST' || !match[2]) {
      sendHtml(res, 405, '<p>Method not allowed</p>')
      return
    }
    const form = await readForm(req)
    const email = (form.get('email') ?? '').trim().toLowerCase()
    const user = email ? opts.users(email) : undefined
    if (!user || user.password !== (form.get('password') ?? '')) {
      sendHtml(
        res,
        200,
        loginPage(details.uid, email, opts.listedLogins?.() ?? [], 'Wrong email or password.'),
      )
      return
    }
    if (user.refused) {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the identity provider refused this user' },
        { mergeWithLastSubmission: false },
      )
      return
    }
    emailBySub.set(user.sub, user.email)
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub } },
      { mergeWithLastSubmission: false },
    )
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`

  provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    clients: opts.clients.map((c) => ({
      ...c,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    })),
    jwks: { keys: [rsaJwk()] },
    cookies: { keys: ['dev-idp-cookie-key-not-secret-1', 'dev-idp-cookie-key-not-secret-2'] },
    scopes: ['openid', 'email'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // EPCC reads the email from the ID token, not from UserInfo.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => false },
    clientBasedCORS: () => false,
    interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 3600,
      Grant: 3600,
    },
    findAccount: async (_ctx: unknown, sub: string) => {
      const email = emailBySub.get(sub)
      if (!email) return undefined
      return { accountId: sub, claims: async () => ({ sub, email, email_verified: true }) }
    },
    loadExistingGrant: async (ctx: OidcCtx) => {
      const { oidc } = ctx
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(oidc.client.clientId)
      const found = grantId ? await oidc.provider.Grant.find(grantId) : undefined
      if (found) return found
      const grant = new oidc.provider.Grant({
        clientId: oidc.client.clientId,
        accountId: oidc.session.accountId,
      })
      grant.addOIDCScope('openid email')
      await grant.save()
      return grant
    },
  })
  handle = provider.callback()

  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
