/**
 * A small typed browser client for epcc-oidc-bff. No dependencies; every call sends the session cookie
 * (`credentials: 'include'`) and `X-CSRF: 1`, and turns the BFF's error bodies into `BffError`s.
 *
 *   const bff = createBffClient('https://shop.example.com/bff')
 *   location.href = bff.loginUrl({ returnTo: '/orders' })
 *   const session = await bff.getSession()            // throws BffError('unauthenticated') when signed out
 *   const carts = await (await bff.epccFetch('/v2/carts')).json()
 */

/** The codes of the BFF's own error bodies (the BFF's docs/http-api.md says what each one asks of you). */
export type BffErrorCode =
  | 'unauthenticated'
  | 'session_expired'
  | 'session_replaced'
  | 'csrf'
  | 'unknown_account'
  | 'unknown_profile'
  | 'profile_required'
  | 'bad_request'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'upstream_unavailable'
  | 'session_store_unavailable'
  | 'overloaded'
  | 'internal_error'

/** The `?error=` codes a failed login lands with on the storefront's error page. */
export type LoginErrorCode =
  | 'access_denied'
  | 'login_expired'
  | 'login_failed'
  | 'upstream_unavailable'
  | 'no_accounts'

export interface Account {
  id: string
  name: string
}

export interface Session {
  member: { id: string; name: string; email: string }
  activeAccount: Account
  accountCount: number
  /** ISO-8601: when the session ends if no further request comes. */
  expiresAt: string
}

export interface AccountsPage {
  data: Account[]
  meta: { page: { offset: number; limit: number }; results: { total: number } }
}

/** One of the member's live sessions (never an id or a token). */
export interface Device {
  /** The session of this browser. */
  current: boolean
  /** ISO-8601: when it signed in. */
  createdAt: string
  /** ISO-8601: its last request (to within a minute). */
  lastUsedAt: string
  /** A coarse description of the browser, e.g. "Chrome on macOS". */
  client: string
}

export interface Devices {
  data: Device[]
}

export interface Profiles {
  data: Account[]
}

/** An error answered by the BFF itself (not by EPCC through the proxy). */
export class BffError extends Error {
  constructor(
    readonly status: number,
    readonly code: BffErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'BffError'
  }

  /** True when the storefront should send the shopper to sign in again. */
  get signInAgain(): boolean {
    return this.code === 'unauthenticated' || this.code === 'session_expired'
  }
}

export interface BffClient {
  getSession(): Promise<Session>
  listAccounts(page?: { offset?: number; limit?: number }): Promise<AccountsPage>
  switchAccount(accountId: string): Promise<Session>
  /** Ends this browser's session; with `everywhere`, every session of the member, in every browser. */
  logout(options?: { everywhere?: boolean }): Promise<void>
  /** The member's live sessions in every browser, this one marked `current`. */
  devices(): Promise<Devices>
  profiles(): Promise<Profiles>
  /** Where to send the browser to sign in (a navigation, not a fetch). */
  loginUrl(options?: { profile?: string; returnTo?: string; prompt?: string; uiLocales?: string }): string
  /**
   * An EPCC call through the BFF's proxy (`path` is EPCC's, e.g. `/v2/carts`). EPCC's own answers come back
   * as they are; the BFF's refusals (`session_expired`, `csrf`, `not_found`, …) throw `BffError`.
   */
  epccFetch(path: string, init?: RequestInit): Promise<Response>
}

/** The BFF's base URL (`PUBLIC_URL`) is the one setting. */
export function createBffClient(baseUrl: string, options: { fetch?: typeof fetch } = {}): BffClient {
  const base = baseUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init))

  const call = async (path: string, init: RequestInit = {}, retried = false): Promise<Response> => {
    const headers = new Headers(init.headers)
    headers.set('X-CSRF', '1')
    const response = await doFetch(`${base}${path}`, { ...init, headers, credentials: 'include' })
    const error = await bffError(response)
    // Another tab's login or account switch gave this browser a newer cookie while the request was on its
    // way: sent again, it carries that cookie. Once only. (A stream body cannot be sent twice.)
    if (error?.code === 'session_replaced' && !retried && !(init.body instanceof ReadableStream))
      return call(path, init, true)
    if (error) throw error
    return response
  }
  const json = async <T>(path: string, init?: RequestInit): Promise<T> =>
    (await call(path, init)).json() as Promise<T>

  return {
    getSession: () => json<Session>('/session'),
    listAccounts: ({ offset = 0, limit = 25 } = {}) =>
      json<AccountsPage>(`/session/accounts?page[offset]=${offset}&page[limit]=${limit}`),
    switchAccount: (accountId) =>
      json<Session>('/session/active-account', {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ accountId }),
      }),
    logout: async ({ everywhere = false } = {}) => {
      await call(
        '/auth/logout',
        everywhere
          ? {
              method: 'POST',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ scope: 'everywhere' }),
            }
          : { method: 'POST' },
      )
    },
    devices: () => json<Devices>('/session/devices'),
    profiles: () => json<Profiles>('/auth/profiles'),
    loginUrl: ({ profile, returnTo, prompt, uiLocales } = {}) => {
      const query = new URLSearchParams()
      if (profile) query.set('profile', profile)
      if (returnTo) query.set('returnTo', returnTo)
      if (prompt) query.set('prompt', prompt)
      if (uiLocales) query.set('ui_locales', uiLocales)
      const q = query.toString()
      return `${base}/auth/login${q ? `?${q}` : ''}`
    },
    epccFetch: (path, init) => call(`/api/epcc${path.startsWith('/') ? path : `/${path}`}`, init),
  }
}

/** The BFF's own error body (`{"error","message"}`), told apart from EPCC's (`{"errors":[…]}`). */
async function bffError(response: Response): Promise<BffError | undefined> {
  if (response.ok || !response.headers.get('content-type')?.includes('application/json')) return undefined
  const body: unknown = await response
    .clone()
    .json()
    .catch(() => undefined)
  if (!body || typeof body !== 'object') return undefined
  const { error, message } = body as { error?: unknown; message?: unknown }
  if (typeof error !== 'string' || typeof message !== 'string') return undefined
  return new BffError(response.status, error as BffErrorCode, message)
}
