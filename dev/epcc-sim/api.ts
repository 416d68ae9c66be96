/** The EPCC API port: store tokens, settings, realm and profiles, account-member tokens, members. */
import {
  accountToken,
  pageMeta,
  type Route,
  readPage,
  requireBearer,
  route,
  type SimContext,
} from './context.js'
import { isRecord, type Req, type Res, sendError, sendJson } from './http.js'
import type { SimMember, SimProfile } from './state.js'

/** POST /oauth/access_token (epcc-api.md §1.1): the top-level token object, not `data`-wrapped. */
function accessToken(ctx: SimContext, req: Req, res: Res) {
  const { opts, quirks } = ctx.state
  const body = isRecord(req.body) ? req.body : {}
  const grant = body.grant_type
  if (typeof grant !== 'string' || grant === '') {
    sendError(res, quirks, 400, { detail: 'grant_type is required', source: 'grant_type' })
    return
  }
  if (grant !== 'implicit' && grant !== 'client_credentials') {
    sendError(res, quirks, 400, { detail: `unsupported grant_type ${grant}`, source: 'grant_type' })
    return
  }
  if (body.client_id !== opts.clientId) {
    sendError(res, quirks, 401, { detail: 'invalid client_id' })
    return
  }
  if (grant === 'client_credentials' && body.client_secret !== opts.clientSecret) {
    sendError(res, quirks, 401, { detail: 'invalid client_secret' })
    return
  }
  sendJson(res, 200, ctx.state.issueStoreToken(grant))
}

/** GET /v2/settings/account-authentication (§1.2). */
function settings(ctx: SimContext, req: Req, res: Res) {
  const kind = requireBearer(ctx, req, res)
  if (!kind) return
  const { opts, quirks } = ctx.state
  if (kind === 'implicit' && quirks.rejectImplicitOnSettings) {
    sendError(res, quirks, 403, { detail: 'implicit tokens may not read account authentication settings' })
    return
  }
  sendJson(res, 200, {
    data: {
      id: opts.settingsId,
      type: 'account_authentication_settings',
      enable_self_signup: false,
      auto_create_account_for_account_members: false,
      account_member_self_management: 'disabled',
      account_management_authentication_token_timeout_secs: opts.accountTokenTtlS,
      relationships: {
        authentication_realm: {
          data: {
            id: opts.realmId,
            type: 'authentication_realm',
            links: { self: `${ctx.apiUrl}/v2/authentication-realms/${opts.realmId}` },
          },
        },
      },
      meta: { client_id: opts.settingsClientId },
      links: { self: `${ctx.apiUrl}/v2/settings/account-authentication` },
    },
  })
}

function knownRealm(ctx: SimContext, res: Res, realm: string | undefined): boolean {
  if (realm === ctx.state.opts.realmId) return true
  sendError(res, ctx.state.quirks, 404, { detail: 'authentication realm not found' })
  return false
}

/** GET /v2/authentication-realms/{realm} (§1.3, related call). */
function realm(ctx: SimContext, req: Req, res: Res, [id]: string[]) {
  if (!requireBearer(ctx, req, res) || !knownRealm(ctx, res, id)) return
  const { opts, createdAt } = ctx.state
  sendJson(res, 200, {
    data: {
      id: opts.realmId,
      type: 'authentication-realm',
      name: 'Buyer Organization Realm',
      redirect_uris: opts.redirectUris,
      duplicate_email_policy: 'allowed',
      origin_id: opts.settingsId,
      origin_type: 'account-authentication-settings',
      meta: { created_at: createdAt, updated_at: createdAt },
      links: { self: `${ctx.apiUrl}/v2/authentication-realms/${opts.realmId}` },
    },
  })
}

export function profileLinks(ctx: SimContext, p: SimProfile) {
  const { storeId, realmId } = ctx.state.opts
  const base = `${ctx.authUrl}/oidc-idp`
  return {
    'authorization-endpoint': `${base}/login/stores/${storeId}/authentication-realms/${realmId}?elasticpath_commerce_cloud_profile_id=${p.id}`,
    'callback-endpoint': `${base}/callback/stores/${storeId}/authentication-realms/${realmId}/oidc-profiles/${p.id}`,
    'client-discovery-url': `${base}/stores/${storeId}/authentication-realms/${realmId}/.well-known/openid-configuration`,
    self: `${ctx.apiUrl}/v2/authentication-realms/${realmId}/oidc-profiles/${p.id}`,
  }
}

function profileData(ctx: SimContext, p: SimProfile) {
  const issuer = ctx.idpUrl ?? `${ctx.authUrl}/direct-idp`
  return {
    id: p.id,
    type: 'oidc-profile',
    name: p.name,
    client_id: p.idpClientId,
    discovery_url: `${issuer}/.well-known/openid-configuration`,
    meta: { issuer, created_at: p.createdAt, updated_at: p.createdAt },
  }
}

/** GET /v2/authentication-realms/{realm}/oidc-profiles[/]: links inside each item (§1.3). */
function profiles(ctx: SimContext, req: Req, res: Res, [realmId]: string[]) {
  if (!requireBearer(ctx, req, res) || !knownRealm(ctx, res, realmId)) return
  const page = readPage(ctx, req, res, 25)
  if (!page) return
  const all = ctx.state.profiles
  const data = all
    .slice(page.offset, page.offset + page.limit)
    .map((p) => ({ ...profileData(ctx, p), links: profileLinks(ctx, p) }))
  const base = `${ctx.apiUrl}/v2/authentication-realms/${realmId}/oidc-profiles`
  sendJson(res, 200, { data, ...pageMeta(ctx, base, page, all.length) })
}

/** GET …/oidc-profiles/{id}: here `links` is a sibling of `data` (§1.3). */
function profile(ctx: SimContext, req: Req, res: Res, [realmId, id]: string[]) {
  if (!requireBearer(ctx, req, res) || !knownRealm(ctx, res, realmId)) return
  const p = ctx.state.profiles.find((x) => x.id === id)
  if (!p) {
    sendError(res, ctx.state.quirks, 404, { detail: 'oidc profile not found' })
    return
  }
  sendJson(res, 200, { data: profileData(ctx, p), links: profileLinks(ctx, p) })
}

const TOKEN_TYPE = 'account_management_authentication_token'

/** POST /v2/account-members/tokens (§1.6, §4.4): `oidc` and the switch mechanism. */
function memberTokens(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  const { state } = ctx
  const q = state.quirks
  const bad = (detail: string, source: string) => sendError(res, q, 400, { detail, source })
  if (req.bodyInvalid || !isRecord(req.body)) return bad('the request body must be a JSON object', 'data')
  const data = req.body.data
  if (!isRecord(data)) return bad('data is required', 'data')
  if (data.type !== TOKEN_TYPE) return bad(`data.type must be ${TOKEN_TYPE}`, 'data.type')
  const asked = readPage(ctx, req, res, state.opts.tokenPageDefault)
  if (!asked) return

  let member: SimMember | undefined
  switch (data.authentication_mechanism) {
    case 'oidc': {
      for (const f of ['oauth_authorization_code', 'oauth_redirect_uri', 'oauth_code_verifier']) {
        if (typeof data[f] !== 'string' || data[f] === '') return bad(`data.${f} is required`, `data.${f}`)
      }
      const result = state.redeemCode(
        data.oauth_authorization_code as string,
        data.oauth_redirect_uri as string,
        data.oauth_code_verifier as string,
      )
      if ('error' in result) return sendError(res, q, 401, { detail: result.error })
      member = state.members.get(result.memberId)
      break
    }
    case TOKEN_TYPE: {
      const claims = accountToken(ctx, req, res, { required: true })
      if (!claims) return
      member = state.members.get(claims.sub)
      break
    }
    case 'password':
    case 'passwordless':
    case 'self_signup':
      return bad(
        `authentication_mechanism ${data.authentication_mechanism} is not enabled for this store`,
        'data.authentication_mechanism',
      )
    default:
      return bad('unknown authentication_mechanism', 'data.authentication_mechanism')
  }
  if (!member) return sendError(res, q, 401, { detail: 'account member not found' })
  const page =
    state.tokenPaging === 'fixed-pages'
      ? { offset: asked.offset, limit: 25 }
      : state.tokenPaging === 'everything'
        ? { offset: 0, limit: Math.max(1, member.accounts.length) }
        : asked

  // Tokens are minted for the page returned only: a 10,000-account member stays cheap.
  const data2 = member.accounts.slice(page.offset, page.offset + page.limit).map((account) => ({
    type: TOKEN_TYPE,
    account_id: account.id,
    account_name: account.name,
    ...state.mintAccountToken(member, account),
  }))
  const { meta, links } = pageMeta(
    ctx,
    `${ctx.apiUrl}/v2/account-members/tokens`,
    page,
    member.accounts.length,
  )
  sendJson(res, 201, {
    data: data2,
    meta: q.omitMemberId ? meta : { account_member_id: member.id, ...meta },
    links,
  })
}

function memberData(ctx: SimContext, m: SimMember & { createdAt: string }) {
  return {
    id: m.id,
    type: 'account_member',
    name: m.name,
    email: m.email,
    meta: { timestamps: { created_at: m.createdAt, updated_at: m.createdAt } },
    links: { self: `${ctx.apiUrl}/v2/account-members/${m.id}` },
  }
}

/** GET /v2/account-members/{id} (§1.9): implicit bearer plus the member's own account token. */
function member(ctx: SimContext, req: Req, res: Res, [id]: string[]) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const m = id === claims.sub ? ctx.state.members.get(id) : undefined
  if (!m) {
    sendError(res, ctx.state.quirks, 404, { detail: 'account member not found' })
    return
  }
  sendJson(res, 200, { data: memberData(ctx, m) })
}

/** GET /v2/account-members: scoped to the token's member (epcc-cli takes data[0] as "me"). */
function members(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const page = readPage(ctx, req, res, 25)
  if (!page) return
  const m = ctx.state.members.get(claims.sub)
  const all = m ? [memberData(ctx, m)] : []
  sendJson(res, 200, {
    data: all.slice(page.offset, page.offset + page.limit),
    ...pageMeta(ctx, `${ctx.apiUrl}/v2/account-members`, page, all.length),
  })
}

const UUIDISH = '([^/]+)'

export const apiRoutes: Route[] = [
  route('POST', /^\/oauth\/access_token$/, accessToken),
  route('GET', /^\/v2\/settings\/account-authentication$/, settings),
  route('GET', new RegExp(`^/v2/authentication-realms/${UUIDISH}$`), realm),
  route('GET', new RegExp(`^/v2/authentication-realms/${UUIDISH}/oidc-profiles/?$`), profiles),
  route('GET', new RegExp(`^/v2/authentication-realms/${UUIDISH}/oidc-profiles/${UUIDISH}$`), profile),
  route('POST', /^\/v2\/account-members\/tokens$/, memberTokens),
  route('GET', /^\/v2\/account-members$/, members),
  route('GET', new RegExp(`^/v2/account-members/${UUIDISH}$`), member),
]
