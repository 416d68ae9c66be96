import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import type { OidcProfile } from './epcc/client.js'
import { LoginError, type LoginErrorCode } from './errors.js'
import type { KeyValueStore } from './session/kv.js'

/** One pending login, stored server-side under its `state` and used at most once. */
export interface LoginTransaction {
  state: string
  codeVerifier: string
  profileId: string
  /** Absolute, already validated against the allowed origins. */
  returnTo: string
  createdAt: number
}

/** RFC 9700 §2.1.1 / security.md §0.1: a pending login lives at most 10 minutes. */
export const LOGIN_TTL_MS = 10 * 60_000
/** Pending logins one browser may hold at once (tabs); the oldest goes first (security.md A-24). */
export const MAX_PENDING_LOGINS = 5
/** `randomState()` gives 32 random bytes, base64url: 43 characters. */
export const STATE_PATTERN = '^[A-Za-z0-9_-]{43}$'
const STATE_RE = new RegExp(STATE_PATTERN)

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

function profileConfiguration(profile: OidcProfile, clientId: string): client.Configuration {
  const config = new client.Configuration(
    { issuer: profile.issuer, authorization_endpoint: profile.authorizationEndpoint },
    clientId,
    undefined,
    client.None(),
  )
  // EPCC serves its endpoints over https; plain http is only accepted on loopback (the simulator).
  const endpoint = new URL(profile.authorizationEndpoint)
  if (endpoint.protocol === 'http:' && LOOPBACK_HOSTS.has(endpoint.hostname))
    client.allowInsecureRequests(config)
  return config
}

/**
 * Starts an authorization-code + PKCE (S256) login against an EPCC OIDC profile: a fresh `state` and
 * verifier, and the authorization URL built on the profile's endpoint exactly as EPCC gave it.
 */
export async function beginLogin(input: {
  profile: OidcProfile
  clientId: string
  redirectUri: string
  returnTo: string
  prompt?: string | undefined
  uiLocales?: string | undefined
  now?: number
}): Promise<{ transaction: LoginTransaction; authorizationUrl: URL }> {
  const state = client.randomState()
  const codeVerifier = client.randomPKCECodeVerifier()
  const parameters: Record<string, string> = {
    redirect_uri: input.redirectUri,
    scope: 'openid email',
    state,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  }
  if (input.prompt) parameters.prompt = input.prompt
  if (input.uiLocales) parameters.ui_locales = input.uiLocales
  const authorizationUrl = client.buildAuthorizationUrl(
    profileConfiguration(input.profile, input.clientId),
    parameters,
  )
  return {
    transaction: {
      state,
      codeVerifier,
      profileId: input.profile.id,
      returnTo: input.returnTo,
      createdAt: input.now ?? Date.now(),
    },
    authorizationUrl,
  }
}

// Contract §6 "Callback codes".
const IDP_ERRORS: Record<string, LoginErrorCode> = {
  access_denied: 'access_denied',
  login_required: 'access_denied',
  consent_required: 'access_denied',
  interaction_required: 'access_denied',
  server_error: 'upstream_unavailable',
  temporarily_unavailable: 'upstream_unavailable',
}

/**
 * Checks the authorization response for its transaction (RFC 9207 `iss`, `state`, `error`, duplicated
 * parameters) and returns the code. Throws a `LoginError`; the error never carries the parameters.
 */
export function readAuthorizationResponse(
  params: URLSearchParams,
  transaction: LoginTransaction,
  profile: OidcProfile,
  clientId: string,
): string {
  const config = profileConfiguration(profile, clientId)
  let validated: URLSearchParams
  try {
    validated = oauth.validateAuthResponse(
      config.serverMetadata(),
      config.clientMetadata(),
      params,
      transaction.state,
    )
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) {
      throw new LoginError(
        IDP_ERRORS[err.error] ?? 'login_failed',
        `the IdP answered ${safeErrorName(err.error)}`,
      )
    }
    throw new LoginError('login_failed', 'invalid authorization response')
  }
  const code = validated.get('code')
  if (!code) throw new LoginError('login_failed', 'authorization response without a code')
  return code
}

/** An OAuth error code is `[\x20-\x21\x23-\x5B\x5D-\x7E]+` (RFC 6749 §4.1.2.1); log nothing else. */
function safeErrorName(error: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : 'an unrecognised error'
}

const MINUTE_MS = 60_000

/**
 * Logins started by this process in the last 10 minutes (a pending login's lifetime), counted by minute:
 * the bound on pending logins in total (docs/limits.md). A login whose callback came back here stops
 * counting; one that never comes back counts until its minute is more than 10 minutes old.
 */
export class StartedLogins {
  private readonly perMinute = new Map<number, number>()

  constructor(
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a login that starts now and returns 0; or, at the bound, the seconds until one may start. */
  start(): number {
    const now = this.now()
    const minute = Math.floor(now / MINUTE_MS)
    let total = 0
    let oldest = minute
    for (const [m, n] of this.perMinute) {
      if ((m + 1) * MINUTE_MS + LOGIN_TTL_MS <= now) this.perMinute.delete(m)
      else {
        total += n
        oldest = Math.min(oldest, m)
      }
    }
    if (total >= this.max)
      return Math.max(1, Math.ceil(((oldest + 1) * MINUTE_MS + LOGIN_TTL_MS - now) / 1000))
    this.perMinute.set(minute, (this.perMinute.get(minute) ?? 0) + 1)
    return 0
  }

  ended(createdAt: number): void {
    const minute = Math.floor(createdAt / MINUTE_MS)
    const n = this.perMinute.get(minute)
    if (n !== undefined) this.perMinute.set(minute, Math.max(0, n - 1))
  }
}

/**
 * Pending logins, each under its own `state` in the key-value store, so that a callback takes its
 * transaction atomically: two replays of one callback cannot both find it.
 */
export class LoginTransactions {
  readonly started: StartedLogins

  constructor(
    private readonly kv: KeyValueStore,
    maxPending: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = new StartedLogins(maxPending, now)
  }

  async save(transaction: LoginTransaction): Promise<void> {
    await this.kv.set(key(transaction.state), JSON.stringify(transaction), LOGIN_TTL_MS)
  }

  /** The transaction for `state`, removed from the store; undefined when unknown, used or expired. */
  async take(state: string): Promise<LoginTransaction | undefined> {
    if (!STATE_RE.test(state)) return undefined
    const raw = await this.kv.take(key(state))
    if (raw === undefined) return undefined
    const transaction = JSON.parse(raw) as LoginTransaction
    this.started.ended(transaction.createdAt)
    if (transaction.state !== state || this.now() - transaction.createdAt > LOGIN_TTL_MS) return undefined
    return transaction
  }

  async discard(states: readonly string[]): Promise<void> {
    await Promise.all(states.map((state) => this.kv.delete(key(state))))
  }
}

/** Store keys of login transactions start with this. */
export const LOGIN_KEY_PREFIX = 'login:'
function key(state: string): string {
  return `${LOGIN_KEY_PREFIX}${state}`
}
