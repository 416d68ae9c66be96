/**
 * The "authorization host" (`/oidc-idp/*`, served on its own port): EPCC as an OpenID Provider towards the
 * storefront and as a relying party towards the upstream IdP (epcc-api.md §4.3).
 */
import { randomBytes } from 'node:crypto'
import * as client from 'openid-client'
import type { Route, SimContext } from './context.js'
import { route } from './context.js'
import { type Req, type Res, redirect, sendError, sendJson } from './http.js'
import type { SimProfile } from './state.js'

/** How long a login may spend at the upstream IdP (on the sim clock). */
const TRANSACTION_TTL_MS = 10 * 60 * 1000

const upstreamConfigs = new WeakMap<SimProfile, Promise<client.Configuration>>()

/** The profile's upstream IdP, discovered once (plain http is fine on loopback). */
function upstream(ctx: SimContext, p: SimProfile): Promise<client.Configuration> {
  let config = upstreamConfigs.get(p)
  if (!config) {
    if (!ctx.idpUrl) throw new Error('no upstream IdP in direct mode')
    config = client.discovery(
      new URL(ctx.idpUrl),
      p.idpClientId,
      { id_token_signed_response_alg: 'RS256' },
      client.ClientSecretBasic(p.idpClientSecret),
      { execute: [client.allowInsecureRequests] },
    )
    // A failed discovery is retried on the next login.
    config.catch(() => upstreamConfigs.delete(p))
    upstreamConfigs.set(p, config)
  }
  return config
}

function callbackEndpoint(ctx: SimContext, p: SimProfile): string {
  const { storeId, realmId } = ctx.state.opts
  return `${ctx.authUrl}/oidc-idp/callback/stores/${storeId}/authentication-realms/${realmId}/oidc-profiles/${p.id}`
}

function backToClient(res: Res, redirectUri: string, params: Record<string, string | undefined>): void {
  const u = new URL(redirectUri)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v)
  redirect(res, u.href)
}

/** Failures before the redirect_uri is trusted are shown, never redirected (RFC 6749 §4.1.2.1). */
function refuse(ctx: SimContext, res: Res, detail: string) {
  sendError(res, ctx.state.quirks, 400, { detail })
}

/** GET /oidc-idp/login/stores/{store}/authentication-realms/{realm}?elasticpath_commerce_cloud_profile_id=… */
async function authorize(ctx: SimContext, req: Req, res: Res, [store, realm]: string[]) {
  const { state } = ctx
  const { opts } = state
  const q = req.query
  if (store !== opts.storeId) return refuse(ctx, res, 'unknown store')
  if (realm !== opts.realmId) return refuse(ctx, res, 'unknown authentication realm')
  const profile = state.profiles.find((p) => p.id === q.elasticpath_commerce_cloud_profile_id)
  if (!profile) return refuse(ctx, res, 'unknown oidc profile')
  if (q.client_id !== opts.settingsClientId) return refuse(ctx, res, 'invalid client_id')
  const redirectUri = q.redirect_uri ?? ''
  if (!opts.redirectUris.includes(redirectUri))
    return refuse(ctx, res, 'redirect_uri is not registered for this realm')

  const fail = (error: string, error_description: string) =>
    backToClient(res, redirectUri, { error, error_description, state: q.state })
  const challenge = q.code_challenge ?? ''
  if (!/^[A-Za-z0-9_-]{43,128}$/.test(challenge)) return fail('invalid_request', 'code_challenge is required')
  if (q.code_challenge_method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256')
  if (q.response_type !== 'code') return fail('unsupported_response_type', 'response_type must be code')
  if (!(q.scope ?? '').split(' ').includes('openid'))
    return fail('invalid_scope', 'scope must include openid')

  const txn = { redirectUri, clientId: q.client_id, codeChallenge: challenge }
  if (opts.idp === 'direct') {
    const member = state.directLogin.memberId ? state.members.get(state.directLogin.memberId) : undefined
    if (!member) return fail('access_denied', 'no member is set to log in')
    return backToClient(res, redirectUri, { code: state.mintCode(member.id, txn), state: q.state })
  }

  const upstreamState = client.randomState()
  const nonce = client.randomNonce()
  state.transactions.set(upstreamState, {
    ...txn,
    profileId: profile.id,
    state: q.state,
    nonce,
    createdAt: state.clock.now(),
  })
  const params: Record<string, string> = {
    redirect_uri: callbackEndpoint(ctx, profile),
    scope: 'openid email',
    state: upstreamState,
    nonce,
  }
  for (const k of ['prompt', 'ui_locales', 'display', 'login_hint'] as const) {
    const v = q[k]
    if (v) params[k] = v
  }
  let config: client.Configuration
  try {
    config = await upstream(ctx, profile)
  } catch {
    state.transactions.delete(upstreamState)
    return fail('temporarily_unavailable', 'the identity provider is unreachable')
  }
  redirect(res, client.buildAuthorizationUrl(config, params).href)
}

/** GET /oidc-idp/callback/…/oidc-profiles/{profile}: the upstream IdP comes back here. */
async function callback(ctx: SimContext, req: Req, res: Res, [store, realm, profileId]: string[]) {
  const { state } = ctx
  const profile = state.profiles.find((p) => p.id === profileId)
  if (store !== state.opts.storeId || realm !== state.opts.realmId || !profile) {
    return refuse(ctx, res, 'unknown callback')
  }
  const upstreamState = req.query.state ?? ''
  const txn = state.transactions.get(upstreamState)
  if (!txn || txn.profileId !== profile.id) return refuse(ctx, res, 'unknown or used login transaction')
  state.transactions.delete(upstreamState)
  if (state.clock.now() - txn.createdAt > TRANSACTION_TTL_MS)
    return refuse(ctx, res, 'login transaction expired')
  const back = (params: Record<string, string | undefined>) =>
    backToClient(res, txn.redirectUri, { ...params, state: txn.state })

  if (req.query.error) {
    return back({ error: req.query.error, error_description: req.query.error_description })
  }
  let email: unknown
  try {
    const config = await upstream(ctx, profile)
    const current = new URL(callbackEndpoint(ctx, profile))
    current.search = req.url.search
    // Checks iss, aud (only EPCC's client), exp and nonce of the ID token.
    const tokens = await client.authorizationCodeGrant(config, current, {
      expectedState: upstreamState,
      expectedNonce: txn.nonce,
      idTokenExpected: true,
    })
    const claims = tokens.claims()
    // EPCC requires the audience to be its client_id alone (SSO-guide, "Requirements for Authentication Providers").
    const aud = claims?.aud
    if (
      !(
        aud === profile.idpClientId ||
        (Array.isArray(aud) && aud.length === 1 && aud[0] === profile.idpClientId)
      )
    ) {
      throw new Error('id_token aud must be exactly the client_id')
    }
    email = claims?.email
  } catch (err) {
    return back({
      error: 'server_error',
      error_description: `upstream token exchange failed: ${String(err)}`,
    })
  }
  const member = typeof email === 'string' ? state.memberByEmail(email) : undefined
  if (!member) return back({ error: 'access_denied', error_description: 'no account member for this user' })
  back({ code: state.mintCode(member.id, txn) })
}

/** GET /oidc-idp/stores/{store}/authentication-realms/{realm}/.well-known/openid-configuration (minimal). */
function discovery(ctx: SimContext, _req: Req, res: Res, [store, realm]: string[]) {
  const { storeId, realmId } = ctx.state.opts
  if (store !== storeId || realm !== realmId) return refuse(ctx, res, 'unknown store or realm')
  const base = `${ctx.authUrl}/oidc-idp`
  sendJson(res, 200, {
    issuer: `${base}/stores/${storeId}/authentication-realms/${realmId}`,
    authorization_endpoint: `${base}/login/stores/${storeId}/authentication-realms/${realmId}`,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'email', 'profile'],
    subject_types_supported: ['public'],
  })
}

const ID = '([^/]+)'

export const authRoutes: Route[] = [
  route('GET', new RegExp(`^/oidc-idp/login/stores/${ID}/authentication-realms/${ID}/?$`), authorize),
  route(
    'GET',
    new RegExp(`^/oidc-idp/callback/stores/${ID}/authentication-realms/${ID}/oidc-profiles/${ID}/?$`),
    callback,
  ),
  route(
    'GET',
    new RegExp(`^/oidc-idp/stores/${ID}/authentication-realms/${ID}/\\.well-known/openid-configuration$`),
    discovery,
  ),
]

export const newClientSecret = () => randomBytes(24).toString('base64url')
