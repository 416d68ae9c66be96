import { request } from 'undici'
import { EpccError, readEpccErrors, scrubEpccText } from './errors.js'

/** What the BFF reads from EPCC; shapes follow ../shared/reference/epcc-api.md §1. */
export interface AccountAuthenticationSettings {
  realmId: string
  /** `meta.client_id`: the `client_id` of the authorization request. */
  clientId: string
}

export interface OidcProfile {
  id: string
  name: string
  /** `links.authorization-endpoint`, exactly as EPCC gave it (own query string, maybe another host). */
  authorizationEndpoint: string
  /** The issuer EPCC presents at the authorization endpoint (for RFC 9207 `iss` checks). */
  issuer: string
}

export interface AccountToken {
  accountId: string
  accountName: string
  token: string
  /** When we received it (epoch ms): with `expiresAt`, its lifetime. */
  issuedAt: number
  /** Epoch milliseconds. */
  expiresAt: number
}

export interface AccountTokenPage {
  memberId: string | undefined
  tokens: AccountToken[]
  offset: number
  /** `meta.results.total`: every account of the member, not just this page. */
  total: number
}

export interface Member {
  id: string
  name: string
  email: string
}

export interface EpccClientOptions {
  baseUrl: string
  clientId: string
  clientSecret?: string | undefined
  timeoutMs: number
  now?: () => number
  /** Told about every call: operation, HTTP status (or "error" / "circuit_open"), seconds taken. */
  observe?: (operation: string, status: string, seconds: number) => void
}

/** After this many EPCC failures in a row, calls fail fast for `BREAKER_COOLDOWN_MS`. */
const BREAKER_THRESHOLD = 5
const BREAKER_COOLDOWN_MS = 10_000

type StoreGrant = 'implicit' | 'client_credentials'
interface StoreToken {
  value: string
  /** Epoch ms (our clock) from which we fetch a new one. */
  renewAt: number
  /** Epoch ms (our clock) when it arrived. */
  fetchedAt: number
  /** Fetched because a proxied call's 401 dropped the one before (see `proxiedCallRefused`). */
  replacedRefused: boolean
}

/** Store tokens are re-fetched this long before they expire (at most a quarter of their lifetime). */
const STORE_TOKEN_LEEWAY_MS = 60_000
/**
 * A proxied 401 on a store token that itself replaced a refused one, younger than this, is EPCC's answer to
 * the request (an account-only path asked anonymously), not a refusal of the token.
 */
const REPLACED_TOKEN_TRUSTED_MS = 60_000
/** EPCC's page size cap (epcc-api.md §1.0). */
export const MAX_PAGE_LIMIT = 100
/** EPCC pages read to fill one window of the token list: 100 accounts in pages of 10 or more. */
const MAX_WINDOW_CALLS = 10

/**
 * The EPCC calls the BFF makes. Every call has the `EPCC_TIMEOUT_MS` budget; failures are `EpccError`s
 * that say whether EPCC refused (`rejected`) or could not answer (`unavailable`).
 */
export class EpccClient {
  private readonly base: string
  private readonly now: () => number
  private readonly storeTokens = new Map<StoreGrant, StoreToken>()
  private readonly storeTokenFetches = new Map<StoreGrant, Promise<StoreToken>>()
  private failuresInARow = 0
  private nextFetchReplacesRefused = false
  private openUntil = 0

  constructor(private readonly opts: EpccClientOptions) {
    this.base = `${opts.baseUrl.replace(/\/+$/, '')}/`
    this.now = opts.now ?? Date.now
  }

  /**
   * The store's implicit token, shared by every session; one fetch in flight at a time. `forStorefront`:
   * fetched for a proxied call, so that its failure does not count towards the circuit breaker, which judges
   * only the BFF's own calls (a storefront's traffic must never fail logins and renewals fast).
   */
  implicitToken(opts: { forStorefront?: boolean } = {}): Promise<string> {
    return this.storeToken('implicit', opts.forStorefront !== true)
  }

  /**
   * A storefront's proxied call with `token` got a 401. Returns whether another implicit token is (or is
   * about to be) current, so that a call that may be sent twice is worth retrying. The token is dropped
   * unless it replaced a refused one moments ago: then the 401 is EPCC's answer to the request, and a burst
   * of anonymous 401s costs at most one token fetch.
   */
  proxiedCallRefused(token: string): boolean {
    const current = this.storeTokens.get('implicit')
    if (!current) return true
    if (current.value !== token) return true
    if (current.replacedRefused && this.now() - current.fetchedAt < REPLACED_TOKEN_TRUSTED_MS) return false
    this.storeTokens.delete('implicit')
    this.nextFetchReplacesRefused = true
    return true
  }

  /** Forgets `token` if it is still the current one of `grant`: the next call fetches a fresh one. */
  private dropStoreToken(grant: StoreGrant, token: string): void {
    if (this.storeTokens.get(grant)?.value === token) this.storeTokens.delete(grant)
  }

  private async storeToken(grant: StoreGrant, judged = true): Promise<string> {
    const cached = this.storeTokens.get(grant)
    if (cached && cached.renewAt > this.now()) return cached.value
    let pending = this.storeTokenFetches.get(grant)
    if (!pending) {
      const replacedRefused = grant === 'implicit' && this.nextFetchReplacesRefused
      if (grant === 'implicit') this.nextFetchReplacesRefused = false
      pending = this.fetchStoreToken(grant, replacedRefused, judged).finally(() =>
        this.storeTokenFetches.delete(grant),
      )
      this.storeTokenFetches.set(grant, pending)
    }
    return (await pending).value
  }

  /**
   * One of our own calls with the store token: a 401 says EPCC no longer takes the token (revoked, rotated,
   * or expired early by its clock), so it is dropped and the call is made once more with a new one (one
   * fetch for every call that saw it refused). `retry: false` for a call that must not be repeated.
   */
  private async withStoreToken<T>(
    grant: StoreGrant,
    send: (token: string) => Promise<T>,
    opts: { retry: boolean } = { retry: true },
  ): Promise<T> {
    const token = await this.storeToken(grant)
    try {
      return await send(token)
    } catch (err) {
      if (!(err instanceof EpccError && err.status === 401)) throw err
      this.dropStoreToken(grant, token)
      if (!opts.retry) throw err
      return send(await this.storeToken(grant))
    }
  }

  private async fetchStoreToken(
    grant: StoreGrant,
    replacedRefused: boolean,
    judged: boolean,
  ): Promise<StoreToken> {
    const form = new URLSearchParams({ grant_type: grant, client_id: this.opts.clientId })
    if (grant === 'client_credentials') form.set('client_secret', this.opts.clientSecret ?? '')
    const body = await this.call<{ access_token?: unknown; expires?: unknown; expires_in?: unknown }>(
      `store_token_${grant}`,
      'oauth/access_token',
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      },
      { judged },
    )
    if (typeof body.access_token !== 'string' || body.access_token === '') {
      throw new EpccError(`store_token_${grant}`, 'unavailable', 200, 'no access_token in the response')
    }
    // Its lifetime by our own clock: EPCC's absolute `expires` is by EPCC's, and the two may disagree.
    const fetchedAt = this.now()
    const lifetimeMs =
      (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 3600) * 1000
    const token = {
      value: body.access_token,
      renewAt: fetchedAt + lifetimeMs - Math.min(STORE_TOKEN_LEEWAY_MS, lifetimeMs / 4),
      fetchedAt,
      replacedRefused,
    }
    this.storeTokens.set(grant, token)
    return token
  }

  /**
   * `GET /v2/settings/account-authentication`. EPCC's permission table forbids it to implicit tokens while
   * its own storefront uses one (epcc-api.md §1.2): try implicit, fall back to client_credentials when a
   * secret is configured.
   */
  async accountAuthenticationSettings(): Promise<AccountAuthenticationSettings> {
    const read = (grant: StoreGrant) =>
      this.withStoreToken(grant, (token) =>
        this.call<{ data?: SettingsData }>(
          'account_authentication_settings',
          'v2/settings/account-authentication',
          { headers: { authorization: `Bearer ${token}` } },
        ),
      )
    let body: { data?: SettingsData }
    try {
      body = await read('implicit')
    } catch (err) {
      const refused = err instanceof EpccError && (err.status === 401 || err.status === 403)
      if (!refused) throw err
      if (!this.opts.clientSecret) throw new SettingsRefusedError(err.status)
      body = await read('client_credentials')
    }
    const realmId = body.data?.relationships?.authentication_realm?.data?.id
    const clientId = body.data?.meta?.client_id
    if (typeof realmId !== 'string' || typeof clientId !== 'string') {
      throw new EpccError(
        'account_authentication_settings',
        'unavailable',
        200,
        'settings without realm or client_id',
      )
    }
    return { realmId, clientId }
  }

  /** Every OIDC profile of the realm, following the pages. */
  async oidcProfiles(realmId: string): Promise<OidcProfile[]> {
    const profiles: OidcProfile[] = []
    for (let offset = 0; ; ) {
      const body = await this.withStoreToken('implicit', (token) =>
        this.call<ListBody<ProfileData>>(
          'oidc_profiles',
          `v2/authentication-realms/${encodeURIComponent(realmId)}/oidc-profiles?page[limit]=${MAX_PAGE_LIMIT}&page[offset]=${offset}`,
          { headers: { authorization: `Bearer ${token}` } },
        ),
      )
      const items = Array.isArray(body.data) ? body.data : []
      for (const item of items) {
        const endpoint = item.links?.['authorization-endpoint']
        if (typeof item.id !== 'string' || typeof endpoint !== 'string') continue
        profiles.push({
          id: item.id,
          name: typeof item.name === 'string' ? item.name : item.id,
          authorizationEndpoint: endpoint,
          issuer: profileIssuer(item, endpoint),
        })
      }
      offset += items.length
      const total = body.meta?.results?.total
      if (items.length === 0 || !hasNext(body.links?.next) || (typeof total === 'number' && offset >= total))
        break
    }
    return profiles
  }

  /** `GET /v2/authentication-realms/{id}`: the `redirect_uris` the realm lets a login come back to. */
  async realmRedirectUris(realmId: string): Promise<string[]> {
    const body = await this.call<{ data?: { redirect_uris?: unknown } }>(
      'authentication_realm',
      `v2/authentication-realms/${encodeURIComponent(realmId)}`,
      { headers: { authorization: `Bearer ${await this.implicitToken()}` } },
    )
    const uris = body.data?.redirect_uris
    return Array.isArray(uris) ? uris.filter((u): u is string => typeof u === 'string') : []
  }

  /**
   * `POST /v2/account-members/tokens` with `authentication_mechanism: oidc`. Never retried: the code is
   * single-use, and a retry after EPCC redeemed it would only fail (RFC 6749 §4.1.2). A 401 still drops the
   * store token, so that the next login uses a new one.
   */
  async exchangeOidcCode(input: {
    code: string
    redirectUri: string
    codeVerifier: string
    limit: number
  }): Promise<AccountTokenPage> {
    const body = await this.withStoreToken(
      'implicit',
      (token) =>
        this.call<ListBody<TokenData>>(
          'exchange_oidc_code',
          `v2/account-members/tokens?page[limit]=${input.limit}&page[offset]=0`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              data: {
                type: 'account_management_authentication_token',
                authentication_mechanism: 'oidc',
                oauth_authorization_code: input.code,
                oauth_redirect_uri: input.redirectUri,
                oauth_code_verifier: input.codeVerifier,
              },
            }),
          },
        ),
      { retry: false },
    )
    // EPCC may answer with more than the limit (every account at once): keep the first page only.
    const first = readTokenPage('exchange_oidc_code', body, 0, this.now())
    return { ...first, tokens: first.tokens.slice(0, input.limit) }
  }

  /**
   * The switch mechanism (`account_management_authentication_token`): a fresh token for every account of
   * the member who owns `accountToken` in `[offset, offset + limit)` (epcc-api.md §1.6). Whether EPCC honours
   * `page[limit]`/`page[offset]` here is not documented: whatever page it answers with (its own size, or
   * every account at once) is cut to the window asked for, and further pages are read until it is full.
   */
  async switchAccountTokens(
    accountToken: string,
    page: { offset: number; limit: number },
  ): Promise<AccountTokenPage> {
    const end = page.offset + page.limit
    const tokens: AccountToken[] = []
    let memberId: string | undefined
    let total = Number.POSITIVE_INFINITY
    for (
      let next = page.offset, calls = 0;
      next < Math.min(end, total) && calls < MAX_WINDOW_CALLS;
      calls++
    ) {
      const got = await this.switchAccountTokenPage(accountToken, { offset: next, limit: end - next })
      memberId ??= got.memberId
      total = got.total
      const from = Math.max(next, got.offset)
      const inWindow = got.tokens.slice(from - got.offset, end - got.offset)
      // A page that does not reach `next` (EPCC kept to its own offset) or brings nothing cannot advance.
      if (got.offset > next || inWindow.length === 0) break
      tokens.push(...inWindow)
      next = from + inWindow.length
    }
    return { memberId, tokens, offset: page.offset, total: Number.isFinite(total) ? total : tokens.length }
  }

  private async switchAccountTokenPage(
    accountToken: string,
    page: { offset: number; limit: number },
  ): Promise<AccountTokenPage> {
    // Retried after a 401 with a new store token: switching mints tokens and redeems nothing, so it may repeat.
    const body = await this.withStoreToken('implicit', (token) =>
      this.call<ListBody<TokenData>>(
        'switch_account_tokens',
        `v2/account-members/tokens?page[limit]=${page.limit}&page[offset]=${page.offset}`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'ep-account-management-authentication-token': accountToken,
            'content-type': 'application/json',
          },
          body: JSON.stringify({
            data: {
              type: 'account_management_authentication_token',
              authentication_mechanism: 'account_management_authentication_token',
            },
          }),
        },
      ),
    )
    return readTokenPage('switch_account_tokens', body, page.offset, this.now())
  }

  /** `GET /v2/account-members/{id}` with the implicit token and an account token of that member. */
  async accountMember(memberId: string, accountToken: string): Promise<Member> {
    const body = await this.withStoreToken('implicit', (token) =>
      this.call<{ data?: { id?: unknown; name?: unknown; email?: unknown } }>(
        'account_member',
        `v2/account-members/${encodeURIComponent(memberId)}`,
        {
          headers: {
            authorization: `Bearer ${token}`,
            'ep-account-management-authentication-token': accountToken,
          },
        },
      ),
    )
    const data = body.data
    if (typeof data?.id !== 'string') {
      throw new EpccError('account_member', 'unavailable', 200, 'member response without an id')
    }
    return {
      id: data.id,
      name: typeof data.name === 'string' ? data.name : '',
      email: typeof data.email === 'string' ? data.email : '',
    }
  }

  /** True while EPCC kept failing and calls fail fast instead of waiting out their budget. */
  get circuitOpen(): boolean {
    return this.now() < this.openUntil
  }

  /**
   * One EPCC call within the budget, through a circuit breaker: after `BREAKER_THRESHOLD` failures in a row
   * (5xx, 429, timeouts, resets) calls fail at once for `BREAKER_COOLDOWN_MS`, then one is let through to
   * probe. A 429 on a GET waits out a `Retry-After` that fits the budget and tries once more; a POST (the
   * code exchange above all) is never repeated. A call that is not `judged` (a store token fetched for the
   * storefront's proxied call) may close the circuit but never opens it.
   */
  private async call<T>(
    operation: string,
    path: string,
    init: CallInit = {},
    { judged = true }: { judged?: boolean } = {},
  ): Promise<T> {
    if (this.circuitOpen) {
      this.opts.observe?.(operation, 'circuit_open', 0)
      throw new EpccError(operation, 'unavailable', undefined, 'circuit open: EPCC kept failing')
    }
    const started = performance.now()
    let status = 'error'
    try {
      const result = await this.attempt<T>(operation, path, init, (s) => {
        status = String(s)
      })
      this.failuresInARow = 0
      return result
    } catch (err) {
      if (err instanceof EpccError && err.kind === 'unavailable') {
        if (!judged) throw err
        this.failuresInARow++
        if (this.failuresInARow >= BREAKER_THRESHOLD) this.openUntil = this.now() + BREAKER_COOLDOWN_MS
      } else {
        this.failuresInARow = 0
      }
      throw err
    } finally {
      this.opts.observe?.(operation, status, (performance.now() - started) / 1000)
    }
  }

  private async attempt<T>(
    operation: string,
    path: string,
    init: CallInit,
    onStatus: (status: number) => void,
  ): Promise<T> {
    const deadline = this.now() + this.opts.timeoutMs
    let status: number
    let text: string
    for (let tries = 1; ; tries++) {
      // A timer cleared once the body is read, not AbortSignal.timeout (whose weakly held timers weigh on the
      // garbage collector).
      const aborter = new AbortController()
      const signal = aborter.signal
      const timer = setTimeout(() => aborter.abort(), Math.max(1, deadline - this.now())).unref()
      let retryAfter: string | string[] | undefined
      try {
        // undici's own request API, not fetch: no WHATWG streams or Headers objects per call, and it never
        // follows a redirect (an EPCC redirect is an answer to report, not a place to send a token).
        const response = await request(`${this.base}${path}`, {
          method: init.method ?? 'GET',
          headers: init.headers,
          body: init.body,
          signal,
        })
        status = response.statusCode
        retryAfter = response.headers['retry-after']
        text = await response.body.text()
      } catch {
        throw new EpccError(
          operation,
          'unavailable',
          undefined,
          signal.aborted ? 'timed out' : 'network error',
        )
      } finally {
        clearTimeout(timer)
      }
      onStatus(status)
      const retryAfterMs = typeof retryAfter === 'string' ? Number(retryAfter) * 1000 : Number.NaN
      const idempotent = (init.method ?? 'GET') === 'GET'
      if (status !== 429 || !idempotent || tries > 1 || !(retryAfterMs >= 0)) break
      if (this.now() + retryAfterMs >= deadline) break
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs))
    }
    if (status >= 200 && status < 300) {
      try {
        return JSON.parse(text) as T
      } catch {
        throw new EpccError(operation, 'unavailable', status, 'response is not JSON')
      }
    }
    const detail = scrubEpccText(
      readEpccErrors(text)
        .map((e) => e.title)
        .join('; '),
      sentValues(init),
    )
    // 429 and 5xx are EPCC's trouble, not a verdict on the request (epcc-api.md §1.0).
    const kind = status === 429 || status >= 500 ? 'unavailable' : 'rejected'
    throw new EpccError(operation, kind, status, detail || `HTTP ${status}`)
  }
}

/**
 * EPCC answered the settings read, and refused the store's implicit token there, with no way around it
 * configured: the message names the variables that fix it.
 */
/** Every header value and every field value of the body a call sent: what EPCC's error text must not echo. */
function sentValues(init: CallInit): string[] {
  const values = Object.values(init.headers ?? {}).flatMap((v) => [v, v.replace(/^Bearer /i, '')])
  if (!init.body) return values
  try {
    collectStrings(JSON.parse(init.body), values)
  } catch {
    for (const [, v] of new URLSearchParams(init.body)) values.push(v)
  }
  return values
}

function collectStrings(value: unknown, into: string[]): void {
  if (typeof value === 'string') into.push(value)
  else if (value && typeof value === 'object') for (const v of Object.values(value)) collectStrings(v, into)
}

/** What a call sends besides its path: every EPCC call has a string body, if any. */
interface CallInit {
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
}

export class SettingsRefusedError extends EpccError {
  constructor(status: number | undefined) {
    super(
      'account_authentication_settings',
      'rejected',
      status,
      'EPCC refused the implicit token on /v2/settings/account-authentication; set EPCC_CLIENT_SECRET, ' +
        'or EPCC_ACCOUNT_REALM_ID and EPCC_ACCOUNT_CLIENT_ID',
    )
    this.name = 'SettingsRefusedError'
  }
}

interface SettingsData {
  relationships?: { authentication_realm?: { data?: { id?: unknown } } }
  meta?: { client_id?: unknown }
}
interface ProfileData {
  id?: unknown
  name?: unknown
  meta?: { issuer?: unknown }
  links?: Record<string, unknown>
}
interface TokenData {
  account_id?: unknown
  account_name?: unknown
  token?: unknown
  expires?: unknown
}
interface ListBody<T> {
  data?: T[]
  meta?: { account_member_id?: unknown; page?: { offset?: unknown }; results?: { total?: unknown } }
  links?: { next?: unknown }
}

/** `links.next` is a URL, `null`, missing, or the string "null" in older responses (epcc-api.md §1.0). */
function hasNext(next: unknown): boolean {
  return typeof next === 'string' && next !== '' && next !== 'null'
}

/**
 * EPCC's own issuer for the realm: the `client-discovery-url` without its well-known suffix, or else the
 * authorization endpoint without its query.
 */
function profileIssuer(item: ProfileData, endpoint: string): string {
  const discovery = item.links?.['client-discovery-url']
  if (typeof discovery === 'string' && discovery.endsWith('/.well-known/openid-configuration')) {
    return discovery.slice(0, -'/.well-known/openid-configuration'.length)
  }
  const url = new URL(endpoint)
  return `${url.origin}${url.pathname}`
}

/**
 * Where the page EPCC sent starts: its `meta.page.offset`; without one, the offset asked for, unless the page
 * holds more than remains from there (EPCC sent every account, from the first).
 */
function appliedOffset(body: ListBody<unknown>, asked: number, count: number): number {
  const stated = body.meta?.page?.offset
  if (typeof stated === 'number' && Number.isInteger(stated) && stated >= 0) return stated
  const total = body.meta?.results?.total
  return typeof total === 'number' && count > total - asked ? Math.max(0, total - count) : asked
}

function readTokenPage(
  operation: string,
  body: ListBody<TokenData>,
  asked: number,
  now: number,
): AccountTokenPage {
  if (!Array.isArray(body.data)) throw new EpccError(operation, 'unavailable', 201, 'token list without data')
  const tokens: AccountToken[] = []
  for (const item of body.data) {
    const expiresAt = typeof item.expires === 'string' ? Date.parse(item.expires) : Number.NaN
    if (typeof item.account_id !== 'string' || typeof item.token !== 'string' || Number.isNaN(expiresAt)) {
      throw new EpccError(operation, 'unavailable', 201, 'token list with an unusable entry')
    }
    tokens.push({
      accountId: item.account_id,
      accountName: typeof item.account_name === 'string' ? item.account_name : '',
      token: item.token,
      issuedAt: now,
      expiresAt,
    })
  }
  const total = body.meta?.results?.total
  const memberId = body.meta?.account_member_id
  return {
    // Older responses leave `meta.account_member_id` out; the token's `sub` names the member (§1.8).
    memberId: typeof memberId === 'string' ? memberId : tokenSubject(tokens[0]?.token),
    tokens,
    offset: appliedOffset(body, asked, tokens.length),
    total: typeof total === 'number' ? total : asked + tokens.length,
  }
}

/** The `sub` claim of an account token, read (not verified: EPCC signs with a secret we don't have). */
function tokenSubject(token: string | undefined): string | undefined {
  const payload = token?.split('.')[1]
  if (!payload) return undefined
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }
    return typeof claims.sub === 'string' ? claims.sub : undefined
  } catch {
    return undefined
  }
}
