/** Everything the simulator remembers (epcc-api.md §4.1), and the rules for minting and checking tokens. */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Quirks, SimRequest } from './http.js'
import { type AccountTokenClaims, isAccountTokenClaims, signHs256, verifyHs256 } from './jwt.js'

export interface SimAccount {
  id: string
  name: string
}

export interface SimMember {
  id: string
  name: string
  email: string
  password: string
  accounts: SimAccount[]
}

export interface SimProfile {
  id: string
  name: string
  /** EPCC's client at the upstream IdP. */
  idpClientId: string
  idpClientSecret: string
  createdAt: string
}

export interface ResolvedOptions {
  host: string
  apiPort: number
  authPort: number
  clientId: string
  clientSecret: string
  storeId: string
  realmId: string
  settingsId: string
  settingsClientId: string
  redirectUris: string[]
  idp: 'real' | 'direct'
  implicitTokenTtlS: number
  accountTokenTtlS: number
  codeTtlS: number
  tokenPageDefault: number
}

export type StoreTokenKind = 'implicit' | 'client_credentials'
export type TokenPaging = 'honoured' | 'fixed-pages' | 'everything'

interface StoreToken {
  kind: StoreTokenKind
  expiresAt: number
}

export interface AuthorizationCode {
  memberId: string
  redirectUri: string
  clientId: string
  codeChallenge: string
  expiresAt: number
  used: boolean
}

/** A pending login at the EPCC authorization endpoint, keyed by the state sent upstream. */
export interface LoginTransaction {
  profileId: string
  clientId: string
  redirectUri: string
  state: string | undefined
  codeChallenge: string
  nonce: string
  createdAt: number
}

export const DEFAULT_PASSWORD = 'password'

export class SimState {
  readonly secret = randomBytes(32)
  private offsetMs = 0
  readonly clock = {
    now: (): number => Date.now() + this.offsetMs,
    advance: (seconds: number): void => {
      this.offsetMs += seconds * 1000
    },
  }
  readonly quirks: Quirks = {
    statusAsString: false,
    nextAsStringNull: false,
    omitMemberId: false,
    rejectImplicitOnSettings: false,
    errorsAsObject: false,
    accessControlHeaders: false,
  }
  /**
   * How `POST /v2/account-members/tokens` treats `page[limit]`/`page[offset]` (undocumented, epcc-api.md
   * §1.6): `honoured`; `fixed-pages` (the limit ignored: pages of 25 from the offset asked for); `everything`
   * (both ignored: every account at once).
   */
  tokenPaging: TokenPaging = 'honoured'

  readonly members = new Map<string, SimMember & { createdAt: string }>()
  private readonly membersByEmail = new Map<string, SimMember & { createdAt: string }>()
  readonly accounts = new Map<string, SimAccount & { createdAt: string }>()
  private readonly refused = new Set<string>()
  private readonly storeTokens = new Map<string, StoreToken>()
  readonly codes = new Map<string, AuthorizationCode>()
  readonly transactions = new Map<string, LoginTransaction>()
  readonly directLogin: { memberId: string | null } = { memberId: null }
  readonly log: SimRequest[] = []
  readonly createdAt: string

  constructor(
    readonly opts: ResolvedOptions,
    readonly profiles: SimProfile[],
  ) {
    this.createdAt = this.isoNow()
  }

  isoNow(): string {
    return new Date(this.clock.now()).toISOString()
  }

  addMember(m: {
    id?: string
    name: string
    email: string
    password?: string
    accounts?: Array<{ id?: string; name: string }> | number
  }): SimMember {
    const email = m.email.trim()
    if (this.membersByEmail.has(email.toLowerCase())) throw new Error(`a member with email ${email} exists`)
    const id = m.id ?? randomUUID()
    if (this.members.has(id)) throw new Error(`a member with id ${id} exists`)
    const wanted =
      typeof m.accounts === 'number'
        ? Array.from({ length: m.accounts }, (_, i) => ({ name: `Account ${i + 1}` }))
        : (m.accounts ?? [])
    const accounts = wanted.map((a) => this.account(a))
    const member = {
      id,
      name: m.name,
      email,
      password: m.password ?? DEFAULT_PASSWORD,
      accounts,
      createdAt: this.isoNow(),
    }
    this.members.set(id, member)
    this.membersByEmail.set(email.toLowerCase(), member)
    return member
  }

  addAccount(a: { id?: string; name: string }): SimAccount {
    return this.account(a)
  }

  /** An existing account when the id is known (memberships are many-to-many), else a new one. */
  private account(a: { id?: string; name: string }): SimAccount {
    const known = a.id ? this.accounts.get(a.id) : undefined
    if (known) return known
    const account = { id: a.id ?? randomUUID(), name: a.name, createdAt: this.isoNow() }
    this.accounts.set(account.id, account)
    return account
  }

  memberByEmail(email: string): SimMember | undefined {
    return this.membersByEmail.get(email.trim().toLowerCase())
  }

  refuseLogin(email: string): void {
    this.refused.add(email.trim().toLowerCase())
  }

  isRefused(email: string): boolean {
    return this.refused.has(email.trim().toLowerCase())
  }

  issueStoreToken(kind: StoreTokenKind) {
    const ttl = this.opts.implicitTokenTtlS
    const token = randomBytes(20).toString('hex')
    const expires = Math.floor(this.clock.now() / 1000) + ttl
    this.storeTokens.set(token, { kind, expiresAt: expires * 1000 })
    return { access_token: token, token_type: 'Bearer', expires_in: ttl, expires, identifier: kind }
  }

  /** EPCC stops accepting every store token issued so far (a rotated client secret, a revocation). */
  revokeStoreTokens(): void {
    this.storeTokens.clear()
  }

  /** The kind of a valid `Authorization: Bearer` store token on the sim clock, else undefined. */
  bearerKind(authorization: string | undefined): StoreTokenKind | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
    const t = m?.[1] ? this.storeTokens.get(m[1]) : undefined
    return t && t.expiresAt > this.clock.now() ? t.kind : undefined
  }

  mintAccountToken(member: SimMember, account: SimAccount) {
    const iat = Math.floor(this.clock.now() / 1000)
    const claims: AccountTokenClaims = {
      sub: member.id,
      scope: account.id,
      realm_id: this.opts.realmId,
      store_id: this.opts.storeId,
      iat,
      exp: iat + this.opts.accountTokenTtlS,
      account_member_self_management: 'disabled',
      ancestors: '',
    }
    return { token: signHs256(claims, this.secret), expires: new Date(claims.exp * 1000).toISOString() }
  }

  /** Claims of an account token signed by this simulator, for this store and realm, unexpired on the sim clock. */
  verifyAccountToken(token: string | undefined): AccountTokenClaims | undefined {
    if (!token) return undefined
    const claims = verifyHs256(token.trim(), this.secret)
    if (!claims || !isAccountTokenClaims(claims)) return undefined
    if (claims.store_id !== this.opts.storeId || claims.realm_id !== this.opts.realmId) return undefined
    if (claims.exp * 1000 <= this.clock.now()) return undefined
    return claims
  }

  mintCode(memberId: string, t: { redirectUri: string; clientId: string; codeChallenge: string }): string {
    const code = randomUUID()
    this.codes.set(code, {
      memberId,
      redirectUri: t.redirectUri,
      clientId: t.clientId,
      codeChallenge: t.codeChallenge,
      expiresAt: this.clock.now() + this.opts.codeTtlS * 1000,
      used: false,
    })
    return code
  }

  /**
   * Redeems an authorization code (epcc-api.md §4.4). Any presentation of a known code uses it up, so a
   * failed attempt (wrong verifier or redirect_uri) cannot be retried.
   */
  redeemCode(code: string, redirectUri: string, verifier: string): { memberId: string } | { error: string } {
    const c = this.codes.get(code)
    if (!c) return { error: 'invalid authorization code' }
    if (c.used) return { error: 'authorization code has already been used' }
    c.used = true
    if (c.expiresAt <= this.clock.now()) return { error: 'authorization code has expired' }
    if (c.redirectUri !== redirectUri)
      return { error: 'redirect_uri does not match the authorization request' }
    const challenge = createHash('sha256').update(verifier).digest('base64url')
    if (challenge !== c.codeChallenge) return { error: 'code_verifier does not match code_challenge' }
    return { memberId: c.memberId }
  }
}
