import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { type EpccSimulator, startEpccSimulator } from '../dev/epcc-sim/index.js'
import { Browser, idpLogin } from './support/browser.js'

const CALLBACK = 'http://127.0.0.1:65000/oauth2/callback'
const OTHER_CALLBACK = 'http://localhost:65001/other/callback'
const TOKEN_TYPE = 'account_management_authentication_token'
const HEX40 = /^[0-9a-f]{40}$/
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

type Json = Record<string, unknown>
interface Answer {
  status: number
  body: Json
  headers: Headers
}

// --- OpenAPI schemas (/work/shared/reference/epcc-openapi), compiled with ajv's 2020-12 dialect ---------
const SPEC_DIR = '/work/shared/reference/epcc-openapi'
const loadSpec = (file: string) => parse(readFileSync(join(SPEC_DIR, file), 'utf8')) as Json
const accountsSpec = loadSpec('accounts.yaml')
const authSpec = loadSpec('authentication.yaml')
// The token list's `links.next`/`prev` are described as "Always `null`…" but typed `string`; allow the
// null the description promises (epcc-api.md §1.0 treats null, a missing key and "null" alike).
/** The node at `keys` in a parsed YAML document (throws when the spec moves). */
function at(doc: unknown, ...keys: string[]): Json {
  let node = doc
  for (const k of keys) {
    if (node === null || typeof node !== 'object' || !(k in node))
      throw new Error(`spec has no ${keys.join('.')}`)
    node = (node as Json)[k]
  }
  return node as Json
}
const tokenLinks = at(
  accountsSpec,
  ...['paths', '/v2/account-members/tokens', 'post', 'responses', '201', 'content', 'application/json'],
  ...['schema', 'properties', 'links', 'properties'],
) as Record<string, Json>
for (const k of ['next', 'prev']) tokenLinks[k] = { ...tokenLinks[k], type: ['string', 'null'] }

const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false })
addFormats.default(ajv)
// EPCC's own link examples carry literal brackets (`?page[offset]=0&page[limit]=25`), which the strict
// RFC 3986 regex of ajv-formats rejects; an absolute URL that WHATWG `URL` parses is what clients need.
ajv.addFormat('uri', (s: string) => URL.canParse(s) && /^[a-z][a-z0-9+.-]*:\/\//i.test(s))
ajv.addSchema({ ...accountsSpec, $id: 'accounts.yaml' })
ajv.addSchema({ ...authSpec, $id: 'authentication.yaml' })
/** `ref` plus `required` keys, so a missing field fails instead of passing vacuously. */
const schema = (ref: string, required: string[] = [], extra: Json = {}) =>
  ajv.compile({ allOf: [{ $ref: ref }], required, ...extra })
const S = {
  bearer: schema('authentication.yaml#/components/schemas/Bearer', [
    'access_token',
    'token_type',
    'expires_in',
    'expires',
    'identifier',
  ]),
  settings: schema('accounts.yaml#/components/schemas/AccountAuthenticationSettingsResponse', [
    'id',
    'type',
    'relationships',
    'meta',
    'account_management_authentication_token_timeout_secs',
  ]),
  member: schema('accounts.yaml#/components/schemas/AccountMemberResponse', [
    'id',
    'type',
    'name',
    'email',
    'meta',
  ]),
  tokenList: schema(
    'accounts.yaml#/paths/~1v2~1account-members~1tokens/post/responses/201/content/application~1json/schema',
    ['data', 'meta', 'links'],
  ),
  tokenItem: schema('accounts.yaml#/components/schemas/AccountManagementAuthenticationTokenResponse', [
    'type',
    'account_id',
    'account_name',
    'token',
    'expires',
  ]),
  account: schema('accounts.yaml#/components/schemas/AccountResponse', ['id', 'type', 'name']),
  error: schema('accounts.yaml#/components/schemas/ErrorResponse', ['errors']),
}
function conforms(t: Test, validate: ReturnType<typeof schema>, value: unknown, what: string) {
  const ok = validate(value)
  t.ok(ok, `${what} conforms to the OpenAPI schema`, { errors: validate.errors ?? [] })
}

// --- helpers ----------------------------------------------------------------------------------------

async function call(
  sim: EpccSimulator,
  method: string,
  path: string,
  opts: {
    bearer?: string
    account?: string
    json?: unknown
    form?: Record<string, string>
    headers?: Json
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.headers as Record<string, string>) }
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`
  if (opts.account) headers['ep-account-management-authentication-token'] = opts.account
  let body: string | undefined
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(opts.json)
  } else if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(opts.form).toString()
  }
  const res = await fetch(new URL(path, sim.apiUrl), { method, headers, body, redirect: 'manual' })
  const text = await res.text()
  let parsed: Json = {}
  try {
    parsed = text ? (JSON.parse(text) as Json) : {}
  } catch {
    parsed = { text }
  }
  return { status: res.status, body: parsed, headers: res.headers }
}

async function implicitToken(sim: EpccSimulator): Promise<string> {
  const r = await call(sim, 'POST', '/oauth/access_token', {
    form: { grant_type: 'implicit', client_id: sim.clientId },
  })
  return r.body.access_token as string
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

function authorizeUrl(sim: EpccSimulator, params: Record<string, string | undefined> = {}): URL {
  const { storeId, realmId } = sim
  const u = new URL(`${sim.authUrl}/oidc-idp/login/stores/${storeId}/authentication-realms/${realmId}`)
  const all: Record<string, string | undefined> = {
    elasticpath_commerce_cloud_profile_id: sim.profiles[0]?.id,
    response_type: 'code',
    scope: 'openid email',
    client_id: sim.settingsClientId,
    redirect_uri: CALLBACK,
    state: 'storefront-state',
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
    ...params,
  }
  for (const [k, v] of Object.entries(all)) if (v !== undefined) u.searchParams.set(k, v)
  return u
}

/** Direct mode: the authorization endpoint answers with the code at once. */
async function directCode(sim: EpccSimulator, memberId: string, challenge: string, redirectUri = CALLBACK) {
  sim.directLogin.memberId = memberId
  const res = await fetch(authorizeUrl(sim, { code_challenge: challenge, redirect_uri: redirectUri }), {
    redirect: 'manual',
  })
  const location = new URL(res.headers.get('location') ?? 'about:blank')
  return location.searchParams.get('code') ?? ''
}

function oidcBody(code: string, verifier: string, redirectUri = CALLBACK) {
  return {
    data: {
      type: TOKEN_TYPE,
      authentication_mechanism: 'oidc',
      oauth_authorization_code: code,
      oauth_redirect_uri: redirectUri,
      oauth_code_verifier: verifier,
    },
  }
}

const switchBody = { data: { type: TOKEN_TYPE, authentication_mechanism: TOKEN_TYPE } }

async function login(sim: EpccSimulator, bearer: string, memberId: string, query = '') {
  const { verifier, challenge } = pkce()
  const code = await directCode(sim, memberId, challenge)
  return call(sim, 'POST', `/v2/account-members/tokens${query}`, { bearer, json: oidcBody(code, verifier) })
}

const decode = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Json
const items = (r: Answer) => r.body.data as Json[]
const firstError = (r: Answer) => (r.body.errors as Json[])[0] as Json

// --- direct mode ----------------------------------------------------------------------------------------

t.test('direct mode', async (t) => {
  const sim = await startEpccSimulator({
    idp: 'direct',
    redirectUris: [CALLBACK, OTHER_CALLBACK],
    profiles: [{ name: 'Acme SSO' }, { name: 'Partner IdP' }, { name: 'Third IdP' }],
  })
  t.teardown(() => sim.close())
  t.match(sim.authUrl, /^http:\/\//)
  t.not(new URL(sim.authUrl).port, new URL(sim.apiUrl).port, 'the authorization host is a second port')
  const bearer = await implicitToken(sim)

  t.test('implicit and client_credentials store tokens', async (t) => {
    const form = await call(sim, 'POST', '/oauth/access_token', {
      form: { grant_type: 'implicit', client_id: sim.clientId },
    })
    t.equal(form.status, 200)
    t.match(form.body, { token_type: 'Bearer', expires_in: 3600, identifier: 'implicit' })
    t.match(form.body.access_token, HEX40)
    t.equal(form.body.expires, Math.floor(sim.clock.now() / 1000) + 3600)
    t.notOk('data' in form.body, 'top-level form, not data-wrapped (epcc-api.md §1.1)')
    conforms(t, S.bearer, form.body, 'implicit token')

    const json = await call(sim, 'POST', '/oauth/access_token', {
      json: { grant_type: 'client_credentials', client_id: sim.clientId, client_secret: sim.clientSecret },
    })
    t.equal(json.status, 200)
    t.equal(json.body.identifier, 'client_credentials')
    conforms(t, S.bearer, json.body, 'client_credentials token')

    const cases: Array<[Record<string, string>, number]> = [
      [{ grant_type: 'implicit', client_id: 'nope' }, 401],
      [{ grant_type: 'client_credentials', client_id: sim.clientId, client_secret: 'wrong' }, 401],
      [{ grant_type: 'client_credentials', client_id: sim.clientId }, 401],
      [{ grant_type: 'password', client_id: sim.clientId }, 400],
      [{ client_id: sim.clientId }, 400],
    ]
    for (const [form, status] of cases) {
      const r = await call(sim, 'POST', '/oauth/access_token', { form })
      t.equal(r.status, status, JSON.stringify(form))
      t.ok(Array.isArray(r.body.errors), 'errors[]')
    }
  })

  t.test('every /v2 call needs a valid bearer', async (t) => {
    for (const bearer of [undefined, 'f'.repeat(40)]) {
      const r = await call(sim, 'GET', '/v2/settings/account-authentication', { bearer })
      t.equal(r.status, 401)
      t.same(r.body, { errors: [{ status: 401, title: 'Unable to validate access token' }] })
    }
  })

  t.test('account authentication settings', async (t) => {
    const r = await call(sim, 'GET', '/v2/settings/account-authentication', { bearer })
    t.equal(r.status, 200)
    const data = r.body.data as Json
    t.match(data, {
      type: 'account_authentication_settings',
      account_management_authentication_token_timeout_secs: 86400,
      relationships: { authentication_realm: { data: { id: sim.realmId, type: 'authentication_realm' } } },
      meta: { client_id: 'account-management' },
    })
    conforms(t, S.settings, data, 'settings data')

    const realm = await call(sim, 'GET', `/v2/authentication-realms/${sim.realmId}`, { bearer })
    t.same((realm.body.data as Json).redirect_uris, [CALLBACK, OTHER_CALLBACK])
  })

  t.test('OIDC profiles: paging and link shape', async (t) => {
    const base = `/v2/authentication-realms/${sim.realmId}/oidc-profiles`
    const all = await call(sim, 'GET', `${base}/`, { bearer })
    t.equal(all.status, 200, 'trailing slash, as in the docs')
    t.equal(items(all).length, 3)
    const page = await call(sim, 'GET', `${base}?page[limit]=2&page[offset]=0`, { bearer })
    t.equal(items(page).length, 2)
    t.match(page.body.meta, { page: { limit: 2, offset: 0, current: 1, total: 2 }, results: { total: 3 } })
    const links = page.body.links as Json
    t.equal(links.next, `${sim.apiUrl}${base}?page[offset]=2&page[limit]=2`)
    t.equal(links.prev, null)
    const second = await call(sim, 'GET', new URL(links.next as string).href.replace(sim.apiUrl, ''), {
      bearer,
    })
    t.equal(items(second).length, 1)
    t.equal((second.body.links as Json).next, null)

    const p = items(page)[0] as Json
    const id = sim.profiles[0]?.id
    t.match(p, { id, type: 'oidc-profile', name: 'Acme SSO' })
    const l = p.links as Record<string, string>
    t.equal(
      l['authorization-endpoint'],
      `${sim.authUrl}/oidc-idp/login/stores/${sim.storeId}/authentication-realms/${sim.realmId}?elasticpath_commerce_cloud_profile_id=${id}`,
    )
    t.equal(
      l['callback-endpoint'],
      `${sim.authUrl}/oidc-idp/callback/stores/${sim.storeId}/authentication-realms/${sim.realmId}/oidc-profiles/${id}`,
    )
    t.match(l['client-discovery-url'], /\/\.well-known\/openid-configuration$/)
    const discovery = await fetch(l['client-discovery-url'] ?? '')
    t.equal(discovery.status, 200)

    const one = await call(sim, 'GET', `${base}/${id}`, { bearer })
    t.equal(one.status, 200)
    t.notOk('links' in (one.body.data as Json), 'single profile: links are not inside data')
    t.equal((one.body.links as Json)['authorization-endpoint'], l['authorization-endpoint'])

    t.equal((await call(sim, 'GET', `${base}/${randomBytes(4).toString('hex')}`, { bearer })).status, 404)
    t.equal((await call(sim, 'GET', '/v2/authentication-realms/nope/oidc-profiles', { bearer })).status, 404)
    t.equal((await call(sim, 'GET', `${base}?page[limit]=101`, { bearer })).status, 400)
    t.equal((await fetch(`${sim.apiUrl}/oidc-idp/login/stores/x/authentication-realms/y`)).status, 404)
  })

  t.test('authorization endpoint checks before it redirects', async (t) => {
    const ann = sim.addMember({ name: 'Ann', email: 'ann.authz@example.com', accounts: 1 })
    sim.directLogin.memberId = ann.id
    const refused: Array<Record<string, string>> = [
      { elasticpath_commerce_cloud_profile_id: 'unknown' },
      { client_id: 'someone-else' },
      { redirect_uri: 'http://127.0.0.1:65000/oauth2/callback/' },
      { redirect_uri: 'https://evil.example/cb' },
    ]
    for (const p of refused) {
      const res = await fetch(authorizeUrl(sim, p), { redirect: 'manual' })
      t.equal(res.status, 400, `400 page for ${JSON.stringify(p)}`)
      t.equal(res.headers.get('location'), null, 'no redirect')
    }
    const badStore = await fetch(
      `${sim.authUrl}/oidc-idp/login/stores/nope/authentication-realms/${sim.realmId}${authorizeUrl(sim).search}`,
      { redirect: 'manual' },
    )
    t.equal(badStore.status, 400)

    const redirected: Array<[Record<string, string | undefined>, string]> = [
      [{ code_challenge: undefined }, 'invalid_request'],
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ scope: 'email' }, 'invalid_scope'],
    ]
    for (const [p, error] of redirected) {
      const res = await fetch(authorizeUrl(sim, p), { redirect: 'manual' })
      t.equal(res.status, 302)
      const to = new URL(res.headers.get('location') ?? '')
      t.equal(`${to.origin}${to.pathname}`, CALLBACK)
      t.equal(to.searchParams.get('error'), error, JSON.stringify(p))
      t.equal(to.searchParams.get('state'), 'storefront-state')
    }

    const ok = await fetch(authorizeUrl(sim, { redirect_uri: OTHER_CALLBACK }), { redirect: 'manual' })
    const to = new URL(ok.headers.get('location') ?? '')
    t.equal(`${to.origin}${to.pathname}`, OTHER_CALLBACK)
    t.ok(to.searchParams.get('code'))
    t.equal(to.searchParams.get('state'), 'storefront-state')

    sim.directLogin.memberId = null
    const denied = await fetch(authorizeUrl(sim), { redirect: 'manual' })
    t.equal(new URL(denied.headers.get('location') ?? '').searchParams.get('error'), 'access_denied')
  })

  t.test('oidc exchange: 201 with page, meta, links and account tokens', async (t) => {
    const ben = sim.addMember({
      name: 'Ben Buyer',
      email: 'ben@example.com',
      accounts: [{ name: 'Bluefuse' }, { name: 'Acme' }, { name: 'Northwind' }],
    })
    const before = Math.floor(sim.clock.now() / 1000)
    const r = await login(sim, bearer, ben.id, '?page[limit]=2')
    t.equal(r.status, 201)
    conforms(t, S.tokenList, r.body, 'token list')
    for (const item of items(r)) conforms(t, S.tokenItem, item, 'token item')
    t.same(
      items(r).map((i) => [i.type, i.account_id, i.account_name]),
      ben.accounts.slice(0, 2).map((a) => [TOKEN_TYPE, a.id, a.name]),
    )
    t.same(r.body.meta, {
      account_member_id: ben.id,
      page: { limit: 2, offset: 0, current: 1, total: 2 },
      results: { total: 3 },
    })
    const tokens = `${sim.apiUrl}/v2/account-members/tokens`
    t.same(r.body.links, {
      current: `${tokens}?page[offset]=0&page[limit]=2`,
      first: `${tokens}?page[offset]=0&page[limit]=2`,
      last: `${tokens}?page[offset]=2&page[limit]=2`,
      next: `${tokens}?page[offset]=2&page[limit]=2`,
      prev: null,
    })
    const first = items(r)[0] as Json
    t.match(first.expires, ISO_MS)
    const claims = decode(first.token as string)
    t.same(JSON.parse(Buffer.from((first.token as string).split('.')[0] ?? '', 'base64url').toString()), {
      alg: 'HS256',
      typ: 'JWT',
    })
    t.match(claims, {
      sub: ben.id,
      scope: ben.accounts[0]?.id,
      realm_id: sim.realmId,
      store_id: sim.storeId,
      account_member_self_management: 'disabled',
      ancestors: '',
    })
    t.ok((claims.iat as number) >= before)
    t.equal((claims.exp as number) - (claims.iat as number), 86400)
    t.equal(new Date(first.expires as string).getTime(), (claims.exp as number) * 1000, 'expires = exp')

    const def = await login(sim, bearer, ben.id)
    t.match(def.body.meta, { page: { limit: 25, total: 1 }, results: { total: 3 } })
    t.equal((def.body.links as Json).next, null)
  })

  t.test('oidc exchange failures', async (t) => {
    const cy = sim.addMember({ name: 'Cy', email: 'cy@example.com', accounts: 1 })
    const tokens = '/v2/account-members/tokens'

    const { verifier, challenge } = pkce()
    const code = await directCode(sim, cy.id, challenge)
    t.equal((await call(sim, 'POST', tokens, { bearer, json: oidcBody(code, verifier) })).status, 201)
    const reused = await call(sim, 'POST', tokens, { bearer, json: oidcBody(code, verifier) })
    t.equal(reused.status, 401, 'a code works once')
    t.ok(Array.isArray(reused.body.errors))

    const p2 = pkce()
    const code2 = await directCode(sim, cy.id, p2.challenge)
    t.equal((await call(sim, 'POST', tokens, { bearer, json: oidcBody(code2, pkce().verifier) })).status, 401)
    t.equal(
      (await call(sim, 'POST', tokens, { bearer, json: oidcBody(code2, p2.verifier) })).status,
      401,
      'a PKCE mismatch uses the code up',
    )

    const p3 = pkce()
    const code3 = await directCode(sim, cy.id, p3.challenge)
    const wrongUri = await call(sim, 'POST', tokens, {
      bearer,
      json: oidcBody(code3, p3.verifier, OTHER_CALLBACK),
    })
    t.equal(wrongUri.status, 401, 'redirect_uri must match the authorization request')

    const p4 = pkce()
    const code4 = await directCode(sim, cy.id, p4.challenge)
    sim.clock.advance(301)
    t.equal(
      (await call(sim, 'POST', tokens, { bearer, json: oidcBody(code4, p4.verifier) })).status,
      401,
      'expired',
    )

    t.equal((await call(sim, 'POST', tokens, { bearer, json: oidcBody('nope', 'x'.repeat(43)) })).status, 401)

    const missing = await call(sim, 'POST', tokens, {
      bearer,
      json: { data: { type: TOKEN_TYPE, authentication_mechanism: 'oidc', oauth_authorization_code: 'x' } },
    })
    t.equal(missing.status, 400)
    t.equal(firstError(missing).source, 'data.oauth_redirect_uri')
    const wrongType = await call(sim, 'POST', tokens, { bearer, json: { data: { type: 'token' } } })
    t.equal(wrongType.status, 400)
    t.equal(firstError(wrongType).source, 'data.type')
    const noData = await call(sim, 'POST', tokens, { bearer, json: {} })
    t.equal(firstError(noData).source, 'data')
    const notJson = await fetch(`${sim.apiUrl}${tokens}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: '{',
    })
    t.equal(notJson.status, 400)
    const tooMany = await call(sim, 'POST', `${tokens}?page[limit]=101`, { bearer, json: switchBody })
    t.equal(tooMany.status, 400)
    t.equal((await call(sim, 'POST', tokens, { json: switchBody })).status, 401, 'no bearer')
  })

  t.test('a member without accounts gets 201 and an empty list', async (t) => {
    const dee = sim.addMember({ name: 'Dee', email: 'dee@example.com' })
    const r = await login(sim, bearer, dee.id)
    t.equal(r.status, 201)
    t.same(r.body.data, [])
    t.match(r.body.meta, { account_member_id: dee.id, results: { total: 0 } })
  })

  t.test('switch mechanism pages through a 250-account member', async (t) => {
    const eve = sim.addMember({ name: 'Eve', email: 'eve@example.com', accounts: 250 })
    const first = await login(sim, bearer, eve.id, '?page[limit]=100')
    const token = (items(first)[0] as Json).token as string
    const seen: string[] = []
    let next: unknown = `${sim.apiUrl}/v2/account-members/tokens?page[offset]=0&page[limit]=100`
    while (typeof next === 'string' && next !== 'null') {
      const r = await call(sim, 'POST', next, { bearer, account: token, json: switchBody })
      t.equal(r.status, 201)
      conforms(t, S.tokenList, r.body, 'switch page')
      seen.push(...items(r).map((i) => i.account_id as string))
      next = (r.body.links as Json).next
    }
    t.equal(seen.length, 250)
    t.same(
      seen,
      eve.accounts.map((a) => a.id),
      'every account once, in order',
    )
    const last = await call(sim, 'POST', '/v2/account-members/tokens?page[offset]=200&page[limit]=100', {
      bearer,
      account: token,
      json: switchBody,
    })
    t.match(last.body.meta, { page: { current: 3, total: 3, offset: 200 }, results: { total: 250 } })
    t.match((last.body.links as Json).prev, /page\[offset\]=100&page\[limit\]=100$/)

    for (const account of [undefined, 'garbage', `${token.slice(0, -2)}xx`]) {
      const r = await call(sim, 'POST', '/v2/account-members/tokens', { bearer, account, json: switchBody })
      t.equal(r.status, 401, `switch with ${account ? 'a bad' : 'no'} header`)
    }
  })

  t.test('a 10,000-account member: the first page of 25 and the totals', async (t) => {
    const big = sim.addMember({ name: 'Big', email: 'big@example.com', accounts: 10000 })
    const r = await login(sim, bearer, big.id)
    t.equal(r.status, 201)
    t.equal(items(r).length, 25)
    t.match(r.body.meta, { results: { total: 10000 }, page: { total: 400 } })
    t.equal((items(r)[24] as Json).account_name, 'Account 25')
  })

  t.test('account member, accounts and shopper resources check both headers', async (t) => {
    const fay = sim.addMember({
      name: 'Fay',
      email: 'fay@example.com',
      accounts: [{ name: 'Fay Co' }, { name: 'Fay Two' }],
    })
    const foreign = sim.addAccount({ name: 'Someone Else Ltd' })
    const r = await login(sim, bearer, fay.id)
    const [one, two] = items(r) as [Json, Json]
    const account = one.token as string

    const me = await call(sim, 'GET', `/v2/account-members/${fay.id}`, { bearer, account })
    t.equal(me.status, 200)
    t.match(me.body.data, { id: fay.id, type: 'account_member', name: 'Fay', email: 'fay@example.com' })
    conforms(t, S.member, me.body.data, 'account member')
    t.equal((await call(sim, 'GET', `/v2/account-members/${fay.id}`, { bearer })).status, 401)
    t.equal((await call(sim, 'GET', `/v2/account-members/${fay.id}`, { account })).status, 401)
    t.equal(
      (
        await call(
          sim,
          'GET',
          `/v2/account-members/${sim.addMember({ name: 'X', email: 'x@example.com' }).id}`,
          { bearer, account },
        )
      ).status,
      404,
    )

    const acct = await call(sim, 'GET', `/v2/accounts/${one.account_id}`, { bearer, account })
    t.equal(acct.status, 200)
    conforms(t, S.account, acct.body.data, 'account')
    t.equal(
      (await call(sim, 'GET', `/v2/accounts/${two.account_id}`, { bearer, account })).status,
      404,
      'only the token scope',
    )
    t.equal((await call(sim, 'GET', `/v2/accounts/${foreign.id}`, { bearer, account })).status, 404)

    const cart = await call(sim, 'POST', '/v2/carts', { bearer, account, json: { data: { name: 'Mine' } } })
    t.equal(cart.status, 200)
    const cartId = (cart.body.data as Json).id as string
    const mine = await call(sim, 'GET', '/v2/carts', { bearer, account })
    t.same(
      items(mine).map((c) => c.id),
      [cartId],
    )
    t.equal(
      (await call(sim, 'GET', '/v2/carts', { bearer })).status,
      401,
      'carts list needs an account token',
    )
    t.equal((await call(sim, 'GET', '/v2/carts', { account })).status, 401, 'and a bearer')
    t.equal((await call(sim, 'GET', `/v2/carts/${cartId}`, { bearer, account })).status, 200)
    t.equal(
      (await call(sim, 'GET', `/v2/carts/${cartId}`, { bearer, account: two.token as string })).status,
      404,
    )
    t.equal(
      (await call(sim, 'GET', `/v2/carts/${cartId}`, { bearer })).status,
      404,
      'an account cart is private',
    )
    t.equal((await call(sim, 'GET', '/v2/carts/guest-cart-1', { bearer })).status, 200, 'anonymous cart')

    const added = await call(sim, 'POST', `/v2/carts/${cartId}/items`, {
      bearer,
      account,
      json: { data: { type: 'cart_item', sku: 'MUG-001', quantity: 2 } },
    })
    t.equal(added.status, 201)
    const order = await call(sim, 'POST', `/v2/carts/${cartId}/checkout`, {
      bearer,
      account,
      json: { data: { contact: { name: 'Fay', email: 'fay@example.com' } } },
    })
    t.equal(order.status, 201)
    const orderId = (order.body.data as Json).id as string
    t.same(
      items(await call(sim, 'GET', '/v2/orders', { bearer, account })).map((o) => o.id),
      [orderId],
    )
    t.equal((await call(sim, 'GET', `/v2/orders/${orderId}`, { bearer, account })).status, 200)
    t.equal(
      (await call(sim, 'GET', `/v2/orders/${orderId}`, { bearer, account: two.token as string })).status,
      404,
    )

    const addr = `/v2/accounts/${one.account_id}/addresses`
    const created = await call(sim, 'POST', addr, {
      bearer,
      account,
      json: { data: { type: 'address', city: 'Leeds' } },
    })
    t.equal(created.status, 201)
    t.match(items(await call(sim, 'GET', addr, { bearer, account }))[0], { city: 'Leeds', type: 'address' })
    t.equal((await call(sim, 'GET', addr, { bearer, account: two.token as string })).status, 404)

    const catalog = await call(sim, 'GET', '/catalog/products', { bearer })
    t.equal(catalog.status, 200)
    t.ok(items(catalog).length > 0)
    t.equal((await call(sim, 'GET', '/catalog/products')).status, 401)
    t.equal((await call(sim, 'GET', '/catalog/products', { bearer, account: 'garbage' })).status, 401)

    const setCookie = await call(sim, 'GET', '/v2/carts/set-cookie-test', { bearer })
    t.equal(setCookie.status, 200)
    t.ok(setCookie.headers.get('set-cookie'))
    const redir = await call(sim, 'GET', '/v2/carts/redirect-test', { bearer })
    t.equal(redir.status, 302)
    t.equal(redir.headers.get('location'), 'https://evil.example/steal')

    const logged = sim.calls('GET', '/v2/orders/')
    t.equal(logged.at(-1)?.headers['ep-account-management-authentication-token'], two.token)
    t.equal(logged.at(-1)?.headers.authorization, `Bearer ${bearer}`)
    t.equal(logged.at(-1)?.status, 404)
  })

  t.test('clock: implicit and account tokens expire', async (t) => {
    const gus = sim.addMember({ name: 'Gus', email: 'gus@example.com', accounts: 1 })
    const fresh = await implicitToken(sim)
    const r = await login(sim, fresh, gus.id)
    const account = (items(r)[0] as Json).token as string
    const path = `/v2/account-members/${gus.id}`
    t.equal((await call(sim, 'GET', path, { bearer: fresh, account })).status, 200)
    sim.clock.advance(3600)
    t.equal((await call(sim, 'GET', path, { bearer: fresh, account })).status, 401, 'implicit token expired')
    const renewed = await implicitToken(sim)
    t.equal((await call(sim, 'GET', path, { bearer: renewed, account })).status, 200)
    sim.clock.advance(86400 - 3600)
    const bearer2 = await implicitToken(sim)
    const dead = await call(sim, 'GET', path, { bearer: bearer2, account })
    t.equal(dead.status, 401, 'account token expired')
    t.notSame(firstError(dead).title, 'Unable to validate access token', 'not the bearer error')
    t.equal((await call(sim, 'GET', '/v2/carts', { bearer: bearer2, account })).status, 401)
    const sw = await call(sim, 'POST', '/v2/account-members/tokens', {
      bearer: bearer2,
      account,
      json: switchBody,
    })
    t.equal(sw.status, 401, 'an expired token cannot switch')
  })

  t.test('faults', async (t) => {
    const b = await implicitToken(sim)
    const settings = '/v2/settings/account-authentication'
    sim.fault({ path: settings, kind: 'status', status: 503, times: 1 })
    const s = await call(sim, 'GET', settings, { bearer: b })
    t.equal(s.status, 503)
    t.match(firstError(s), { status: 503, title: 'Service Unavailable' })
    t.equal((await call(sim, 'GET', settings, { bearer: b })).status, 200, 'times: 1')

    sim.fault({ method: 'GET', path: /^\/v2\/settings/, kind: 'html5xx', times: 1 })
    const html = await fetch(`${sim.apiUrl}${settings}`, { headers: { authorization: `Bearer ${b}` } })
    t.equal(html.status, 502)
    t.match(html.headers.get('content-type'), /text\/html/)
    t.match(await html.text(), /<html>/)

    sim.fault({ path: settings, kind: 'rate-limit', retryAfterS: 7, times: 1 })
    const limited = await call(sim, 'GET', settings, { bearer: b })
    t.equal(limited.status, 429)
    t.equal(limited.headers.get('retry-after'), '7')
    t.match(firstError(limited), { status: 429 })

    sim.fault({ path: settings, kind: 'reset', times: 1 })
    await t.rejects(fetch(`${sim.apiUrl}${settings}`, { headers: { authorization: `Bearer ${b}` } }))

    sim.fault({ path: settings, kind: 'delay', delayMs: 150, times: 1 })
    const started = performance.now()
    t.equal((await call(sim, 'GET', settings, { bearer: b })).status, 200)
    t.ok(performance.now() - started >= 140, 'delayed, then answered')

    sim.fault({ path: settings, kind: 'hang' })
    const hung = await fetch(`${sim.apiUrl}${settings}`, {
      headers: { authorization: `Bearer ${b}` },
      signal: AbortSignal.timeout(200),
    }).catch((err: unknown) => err)
    t.type(hung, Error, 'no answer')
    t.equal(sim.calls('GET', settings).at(-1)?.status, 0, 'logged, unanswered')
    sim.clearFaults()
    t.equal((await call(sim, 'GET', settings, { bearer: b })).status, 200)

    sim.fault({ method: 'POST', path: '/oauth', kind: 'status', times: 1 })
    const e500 = await call(sim, 'POST', '/oauth/access_token', {
      form: { grant_type: 'implicit', client_id: sim.clientId },
    })
    t.equal(e500.status, 500)
    t.match(firstError(e500), { title: 'Internal Server Error', request_id: String })
  })

  t.test('quirks', async (t) => {
    t.teardown(() => {
      Object.assign(sim.quirks, {
        statusAsString: false,
        nextAsStringNull: false,
        omitMemberId: false,
        rejectImplicitOnSettings: false,
        errorsAsObject: false,
      })
    })
    const b = await implicitToken(sim)
    const hal = sim.addMember({ name: 'Hal', email: 'hal@example.com', accounts: 2 })

    const unauth = await call(sim, 'GET', '/v2/settings/account-authentication')
    t.equal(firstError(unauth).status, 401, 'numbers by default (errors.md)')
    sim.quirks.statusAsString = true
    const str = await call(sim, 'GET', '/v2/settings/account-authentication')
    t.equal(firstError(str).status, '401')
    conforms(t, S.error, str.body, 'string-status error')
    sim.quirks.errorsAsObject = true
    const obj = await call(sim, 'GET', '/v2/settings/account-authentication')
    t.match(obj.body, { errors: { status: '401', title: 'Unable to validate access token' } })

    sim.quirks.nextAsStringNull = true
    sim.quirks.omitMemberId = true
    const r = await login(sim, b, hal.id)
    t.equal((r.body.links as Json).next, 'null')
    t.equal((r.body.links as Json).prev, 'null')
    t.notOk('account_member_id' in (r.body.meta as Json))

    sim.quirks.rejectImplicitOnSettings = true
    t.equal((await call(sim, 'GET', '/v2/settings/account-authentication', { bearer: b })).status, 403)
    const cc = await call(sim, 'POST', '/oauth/access_token', {
      form: { grant_type: 'client_credentials', client_id: sim.clientId, client_secret: sim.clientSecret },
    })
    const viaCc = await call(sim, 'GET', '/v2/settings/account-authentication', {
      bearer: cc.body.access_token as string,
    })
    t.equal(viaCc.status, 200, 'client_credentials still reads the settings')
  })

  t.test('log and the /__sim control surface', async (t) => {
    sim.clearLog()
    await call(sim, 'POST', '/oauth/access_token', {
      form: { grant_type: 'implicit', client_id: sim.clientId },
    })
    t.equal(sim.log.length, 1)
    t.match(sim.log[0], {
      method: 'POST',
      path: '/oauth/access_token',
      status: 200,
      body: { grant_type: 'implicit', client_id: sim.clientId },
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    const log = await call(sim, 'GET', '/__sim/log')
    t.equal((log.body.data as Json[]).length, 1, 'control calls are not logged')
    const before = sim.clock.now()
    const adv = await call(sim, 'POST', '/__sim/clock/advance', { json: { seconds: 60 } })
    t.ok((adv.body.now as number) - before >= 60_000)
    t.equal(
      (await call(sim, 'POST', '/__sim/faults', { json: { path: '/catalog', kind: 'status', status: 418 } }))
        .status,
      201,
    )
    t.equal((await call(sim, 'GET', '/catalog/products')).status, 418)
    await call(sim, 'DELETE', '/__sim/faults')
    t.equal((await call(sim, 'GET', '/catalog/products')).status, 401)
    const members = await call(sim, 'GET', '/__sim/members')
    t.ok((members.body.data as Json[]).some((m) => m.email === 'eve@example.com' && m.accountCount === 250))
  })
})

// --- real mode: the storefront → EPCC → oidc-provider → EPCC → storefront round trip ----------------------

t.test('real mode through oidc-provider', async (t) => {
  const sim = await startEpccSimulator({ redirectUris: [CALLBACK] })
  t.teardown(() => sim.close())
  t.ok(sim.idpUrl)
  const bearer = await implicitToken(sim)
  const ivy = sim.addMember({ name: 'Ivy', email: 'ivy@example.com', password: 'ivy-pass', accounts: 2 })
  sim.addMember({ name: 'Rex', email: 'rex@example.com', accounts: 1 })
  sim.refuseLogin('rex@example.com')
  const atCallback = (u: URL) => `${u.origin}${u.pathname}` === CALLBACK

  t.test('full login: form, code, exchange', async (t) => {
    const { verifier, challenge } = pkce()
    const browser = new Browser()
    const url = authorizeUrl(sim, { code_challenge: challenge, state: 'st-1', ui_locales: 'en' })
    const back = await idpLogin(
      browser,
      url.href,
      { email: 'ivy@example.com', password: 'ivy-pass' },
      atCallback,
    )
    t.equal(back.searchParams.get('state'), 'st-1')
    const code = back.searchParams.get('code') ?? ''
    t.ok(code)
    const r = await call(sim, 'POST', '/v2/account-members/tokens', {
      bearer,
      json: oidcBody(code, verifier),
    })
    t.equal(r.status, 201)
    t.match(r.body.meta, { account_member_id: ivy.id, results: { total: 2 } })

    const upstream = sim.calls('GET', '/oidc-idp/callback/')
    t.equal(upstream.length, 1, 'the IdP came back to the callback endpoint')
    t.ok(upstream[0]?.query.code && upstream[0]?.query.state)
  })

  t.test('the login form: wrong password shows it again', async (t) => {
    const browser = new Browser()
    const first = await browser.follow(authorizeUrl(sim).href, { stopAt: atCallback })
    t.equal(first.response.status, 200)
    t.equal(first.url.origin, sim.idpUrl)
    const html = await first.response.text()
    t.match(html, /<form method="post" action="\/interaction\/[^"]+\/login"/)
    t.match(html, /name="email"/)
    t.match(html, /name="password"/)
    t.match(html, /id="sign-in"/)
    const wrong = await browser.submitForm(first.url, html, { email: 'ivy@example.com', password: 'nope' })
    t.equal(wrong.status, 200)
    const again = await wrong.text()
    t.match(again, /Wrong email or password/)
    t.match(again, /<form/)
    const right = await browser.submitForm(first.url, again, {
      email: 'ivy@example.com',
      password: 'ivy-pass',
    })
    t.ok(right.status >= 300 && right.status < 400)
    const done = await browser.follow(new URL(right.headers.get('location') ?? '', first.url), {
      stopAt: atCallback,
    })
    t.ok(done.url.searchParams.get('code'))

    await t.rejects(
      idpLogin(
        new Browser(),
        authorizeUrl(sim).href,
        { email: 'ivy@example.com', password: 'bad' },
        atCallback,
      ),
      /did not redirect/,
    )
  })

  t.test('a refused user comes back with access_denied and the storefront state', async (t) => {
    const back = await idpLogin(
      new Browser(),
      authorizeUrl(sim, { state: 'st-rex' }).href,
      { email: 'rex@example.com', password: 'password' },
      atCallback,
    )
    t.equal(back.searchParams.get('error'), 'access_denied')
    t.equal(back.searchParams.get('state'), 'st-rex')
    t.notOk(back.searchParams.get('code'))
  })

  t.test('prompt=none without an IdP session: login_required', async (t) => {
    const browser = new Browser()
    const done = await browser.follow(authorizeUrl(sim, { prompt: 'none', state: 'st-none' }).href, {
      stopAt: atCallback,
    })
    t.equal(done.url.searchParams.get('error'), 'login_required')
    t.equal(done.url.searchParams.get('state'), 'st-none')
  })

  t.test('a login that lingers at the IdP past 10 minutes is refused at the callback', async (t) => {
    const browser = new Browser()
    const page = await browser.follow(authorizeUrl(sim).href, { stopAt: atCallback })
    sim.clock.advance(601)
    const html = await page.response.text()
    const submitted = await browser.submitForm(page.url, html, {
      email: 'ivy@example.com',
      password: 'ivy-pass',
    })
    const done = await browser.follow(new URL(submitted.headers.get('location') ?? '', page.url), {
      stopAt: atCallback,
    })
    t.equal(done.response.status, 400)
    t.match(done.url.pathname, /^\/oidc-idp\/callback\//)
  })

  t.test('an unknown callback state is refused without a redirect', async (t) => {
    const p = sim.profiles[0]?.id
    const res = await fetch(
      `${sim.authUrl}/oidc-idp/callback/stores/${sim.storeId}/authentication-realms/${sim.realmId}/oidc-profiles/${p}?code=x&state=forged`,
      { redirect: 'manual' },
    )
    t.equal(res.status, 400)
    t.equal(res.headers.get('location'), null)
  })
})

t.test('close() ends hanging requests promptly', async (t) => {
  const sim = await startEpccSimulator({ idp: 'direct', redirectUris: [CALLBACK] })
  sim.fault({ path: '/', kind: 'hang' })
  const pending = fetch(`${sim.apiUrl}/oauth/access_token`, { method: 'POST' }).catch((err: unknown) => err)
  await new Promise((r) => setTimeout(r, 50))
  // The hanging request would hold close() forever; "promptly" is anything well short of that.
  const started = performance.now()
  await sim.close()
  t.ok(performance.now() - started < 5000)
  t.type(await pending, Error)
})
