import { type AccountToken, type EpccClient, MAX_PAGE_LIMIT } from './epcc/client.js'
import { EpccError } from './epcc/errors.js'
import { BffError, LoginError, unknownAccount } from './errors.js'
import type { KeyValueStore } from './session/kv.js'
import { withLock } from './session/lock.js'
import {
  type AccountRef,
  renewalDue,
  type SessionPolicy,
  type SignedIn,
  sessionDeadline,
  touchIntervalMs,
} from './session/model.js'
import { MAX_VAULT_TOKENS, TokenVault, type VaultEntry } from './session/vault.js'

export interface SessionView {
  member: { id: string; name: string; email: string }
  activeAccount: AccountRef
  accountCount: number
  expiresAt: string
}

export interface AccountsPage {
  data: AccountRef[]
  meta: { page: { offset: number; limit: number }; results: { total: number } }
}

/** EPCC refused to renew the session's token (or it is gone): the session is over. */
export class SessionExpiredError extends BffError {
  constructor(readonly reason: 'deadline' | 'renewal_refused' | 'tokens_gone' = 'tokens_gone') {
    super(401, 'session_expired', 'The session has expired; sign in again.')
  }
}

export type RenewalOutcome = 'renewed' | 'refused' | 'unavailable'

/** A renewal or switch lock is held at most this long; a crashed holder blocks no one for longer. */
const LOCK_LEASE_MS = 10_000

/** The browser's session as an account switch sees it (the framework's session behind it). */
export interface SwitchingSession {
  /** Throws unless the session `auth` was read from still lives (a switch that went first replaced it). */
  ensureCurrent(): Promise<void>
  /** Stores the switched state under a new session id (contract §2): the old id resolves to nothing. */
  replace(switched: SignedIn): Promise<void>
}

/**
 * What a signed-in member can do with their session: sign in from an authorization code, read it, keep its
 * token fresh, page through their accounts, switch the active one, sign out. Framework-free; routes call it.
 */
export class MemberSessions {
  private readonly vault: TokenVault
  /** Renewals running in this process, by vault id: concurrent requests of one session share one. */
  private readonly renewals = new Map<string, Promise<SignedIn>>()

  private readonly now: () => number
  private readonly onRenewal: (outcome: RenewalOutcome) => void

  constructor(
    private readonly epcc: EpccClient,
    private readonly kv: KeyValueStore,
    readonly policy: SessionPolicy,
    opts: { now?: () => number; onRenewal?: (outcome: RenewalOutcome) => void } = {},
  ) {
    this.now = opts.now ?? Date.now
    this.onRenewal = opts.onRenewal ?? (() => {})
    this.vault = new TokenVault(kv)
  }

  /**
   * Redeems the code (once: never retried) and builds the signed-in state. The active account is the first
   * one EPCC lists (contract §6). Failures are `LoginError`s with the contract's callback codes.
   */
  async signIn(input: { code: string; codeVerifier: string; redirectUri: string }): Promise<SignedIn> {
    const page = await this.epcc
      .exchangeOidcCode({ ...input, limit: MAX_PAGE_LIMIT })
      .catch((err: unknown) => {
        throw asLoginError(err, 'token exchange')
      })
    const [first] = page.tokens
    if (!first) throw new LoginError('no_accounts', 'the member belongs to no account')
    if (!page.memberId) throw new LoginError('upstream_unavailable', 'token list names no member')
    const member = await this.epcc.accountMember(page.memberId, first.token).catch((err: unknown) => {
      throw asLoginError(err, 'member profile', 'upstream_unavailable')
    })
    const now = this.now()
    const auth: SignedIn = {
      member,
      activeAccount: { id: first.accountId, name: first.accountName },
      accountCount: page.total,
      vaultId: TokenVault.newId(),
      activeIndex: 0,
      tokenIssuedAt: first.issuedAt,
      tokenExpiresAt: first.expiresAt,
      createdAt: now,
      lastSeenAt: now,
    }
    await this.vault.put(auth.vaultId, { tokens: page.tokens }, this.ttl(auth))
    return auth
  }

  /** True once the session is past its idle or absolute deadline or its active token has expired. */
  isOver(auth: SignedIn): boolean {
    return this.now() >= sessionDeadline(auth, this.policy)
  }

  /**
   * The session if it still lives: past its deadline by the record's account, it may only be that the token
   * was renewed (by a concurrent request or another replica) after this record was read; the vault knows.
   */
  async live(auth: SignedIn): Promise<SignedIn | undefined> {
    if (!this.isOver(auth)) return auth
    const current = await this.vaultState(auth).catch(() => undefined)
    return current && !this.isOver(current) ? current : undefined
  }

  /** The state with `lastSeenAt` moved to now, or undefined when the stored one is recent enough. */
  touched(auth: SignedIn): SignedIn | undefined {
    const now = this.now()
    return now - auth.lastSeenAt >= touchIntervalMs(this.policy) ? { ...auth, lastSeenAt: now } : undefined
  }

  view(auth: SignedIn): SessionView {
    return {
      member: { id: auth.member.id, name: auth.member.name, email: auth.member.email },
      activeAccount: auth.activeAccount,
      accountCount: auth.accountCount,
      expiresAt: new Date(sessionDeadline(auth, this.policy)).toISOString(),
    }
  }

  /**
   * The state with a token that is not due for renewal: renewed through EPCC's switch mechanism when due
   * (contract §4), at most once at a time per session in this process and, through a lock with a lease in the
   * store, across replicas. EPCC refusing the renewal ends the session (`SessionExpiredError`); EPCC being
   * unreachable keeps the current token while it lasts.
   */
  fresh(auth: SignedIn): Promise<SignedIn> {
    if (!renewalDue(auth, this.now())) return Promise.resolve(auth)
    let running = this.renewals.get(auth.vaultId)
    if (!running) {
      running = this.renewUnderLock(auth).finally(() => this.renewals.delete(auth.vaultId))
      this.renewals.set(auth.vaultId, running)
    }
    return running.then((renewed) => ({ ...auth, ...pickToken(renewed) }))
  }

  /** The active account's token, for the proxy. */
  async activeToken(auth: SignedIn): Promise<string> {
    return this.activeEntry(auth, await this.entry(auth)).token
  }

  /**
   * One page of the member's accounts; pages beyond the tokens we hold come from EPCC's switch list, and
   * the returned state remembers where, so that a switch to an account just listed finds it in one call.
   */
  async accounts(
    auth: SignedIn,
    offset: number,
    limit: number,
  ): Promise<{ page: AccountsPage; auth: SignedIn }> {
    const entry = await this.entry(auth)
    let tokens: AccountToken[]
    let total = auth.accountCount
    let state = auth
    const held = Math.min(entry.tokens.length, MAX_PAGE_LIMIT)
    if (offset + limit <= held || entry.tokens.length >= auth.accountCount) {
      tokens = entry.tokens.slice(offset, offset + limit)
    } else {
      if (auth.listedOffset !== offset) state = { ...auth, listedOffset: offset }
      const page = await this.epcc
        .switchAccountTokens(this.activeEntry(auth, entry).token, { offset, limit })
        .catch((err: unknown) => {
          throw asApiError(err)
        })
      tokens = page.tokens
      total = page.total
    }
    const page = {
      data: tokens.map((t) => ({ id: t.accountId, name: t.accountName })),
      meta: { page: { offset, limit }, results: { total } },
    }
    return { page, auth: state }
  }

  /** The state with `accountId` active; `unknown_account` when it is not one of the member's accounts. */
  async switchAccount(auth: SignedIn, accountId: string): Promise<SignedIn> {
    const entry = await this.entry(auth)
    const index = entry.tokens.slice(0, MAX_PAGE_LIMIT).findIndex((t) => t.accountId === accountId)
    let found: { token: AccountToken; index: number } | undefined
    const first = entry.tokens[index]
    if (first) found = { token: first, index }
    else if (entry.tokens.length < auth.accountCount || entry.tokens.length > MAX_PAGE_LIMIT) {
      found = await this.findBeyondFirstPage(auth, entry, accountId)
    }
    if (!found) throw unknownAccount()
    return {
      ...auth,
      activeAccount: { id: found.token.accountId, name: found.token.accountName },
      activeIndex: found.index,
      tokenIssuedAt: found.token.issuedAt,
      tokenExpiresAt: found.token.expiresAt,
      lastSeenAt: this.now(),
    }
  }

  /**
   * `switchAccount` for the browser's session, one switch at a time per signed-in member across replicas: a
   * second switch sent with the same cookie finds that session replaced (`session_replaced`), so the browser
   * ends with one consistent session.
   */
  switchSession(auth: SignedIn, accountId: string, session: SwitchingSession): Promise<SignedIn> {
    return withLock(this.kv, `lock:switch:${auth.vaultId}`, LOCK_LEASE_MS, async () => {
      await session.ensureCurrent()
      const switched = await this.switchAccount(auth, accountId)
      await session.replace(switched)
      await this.keep(switched)
      return switched
    })
  }

  /**
   * Writes the session's tokens again, sealed with the newest key: called when the session shows it was last
   * written under an older `SESSION_SECRET`, so that the old secret can be dropped without losing it.
   */
  async reseal(auth: SignedIn): Promise<void> {
    const entry = await this.vault.get(auth.vaultId)
    if (entry) await this.vault.update(auth.vaultId, entry, this.ttl(auth))
  }

  /** Moves the expiry of the session's tokens to its (new) deadline: nothing outlives its session. */
  async keep(auth: SignedIn): Promise<void> {
    await Promise.all([
      this.vault.expire(auth.vaultId, this.ttl(auth)),
      this.kv.expire(accountIdsKey(auth.vaultId), this.ttl(auth)),
    ])
  }

  /** Deletes the session's tokens (and the account list, when it was read). */
  async end(auth: Pick<SignedIn, 'vaultId'>): Promise<void> {
    await Promise.all([this.vault.delete(auth.vaultId), this.kv.delete(accountIdsKey(auth.vaultId))])
  }

  private renewUnderLock(auth: SignedIn): Promise<SignedIn> {
    const stillDue = async () => {
      // Another replica renewed, or is renewing: its result appears in the vault.
      const current = await this.vaultState(auth)
      return renewalDue(current, this.now()) ? undefined : current
    }
    return withLock(
      this.kv,
      `lock:renew:${auth.vaultId}`,
      LOCK_LEASE_MS,
      // Re-read after acquiring: the renewal may have happened while we waited.
      async () => (await stillDue()) ?? this.renew(await this.vaultState(auth)),
      stillDue,
    )
  }

  private async renew(auth: SignedIn): Promise<SignedIn> {
    const entry = await this.entry(auth)
    const offset = Math.floor(auth.activeIndex / MAX_PAGE_LIMIT) * MAX_PAGE_LIMIT
    let page: Awaited<ReturnType<EpccClient['switchAccountTokens']>>
    try {
      page = await this.epcc.switchAccountTokens(this.activeEntry(auth, entry).token, {
        offset,
        limit: MAX_PAGE_LIMIT,
      })
    } catch (err) {
      // Only EPCC refusing the member's token ends the session; a refused store token is not theirs.
      if (err instanceof EpccError && err.kind === 'rejected' && err.operation === 'switch_account_tokens') {
        this.onRenewal('refused')
        await this.end(auth)
        throw new SessionExpiredError('renewal_refused')
      }
      this.onRenewal('unavailable')
      return auth // EPCC unreachable: the current token serves while it lasts.
    }
    const renewed = page.tokens.find((t) => t.accountId === auth.activeAccount.id)
    if (!renewed) {
      // The member no longer belongs to the active account.
      this.onRenewal('refused')
      await this.end(auth)
      throw new SessionExpiredError('renewal_refused')
    }
    const fresh = new Map(page.tokens.map((t) => [t.accountId, t]))
    const tokens = entry.tokens.map((t) => fresh.get(t.accountId) ?? t)
    const state = { ...auth, tokenIssuedAt: renewed.issuedAt, tokenExpiresAt: renewed.expiresAt }
    // Only while the session lives: a renewal that finishes after a logout puts no token back.
    if (!(await this.vault.update(auth.vaultId, { tokens }, this.ttl(state)))) {
      throw new SessionExpiredError('tokens_gone')
    }
    this.onRenewal('renewed')
    return state
  }

  /** The session state with the active token as the vault holds it now. */
  private async vaultState(auth: SignedIn): Promise<SignedIn> {
    const token = this.activeEntry(auth, await this.entry(auth))
    return { ...auth, tokenIssuedAt: token.issuedAt, tokenExpiresAt: token.expiresAt }
  }

  private async findBeyondFirstPage(
    auth: SignedIn,
    entry: VaultEntry,
    accountId: string,
  ): Promise<{ token: AccountToken; index: number } | undefined> {
    // Once every page was read, the member's account ids are known: a switch to any other account is
    // refused without asking EPCC again.
    const known = await this.kv.get(accountIdsKey(auth.vaultId))
    if (known !== undefined && !(JSON.parse(known) as string[]).includes(accountId)) return undefined
    const activeToken = this.activeEntry(auth, entry).token
    // Pages of 100 from EPCC's list, the one last listed first; each at most once.
    const pages = Math.ceil(auth.accountCount / MAX_PAGE_LIMIT)
    const first = Math.floor((auth.listedOffset ?? 0) / MAX_PAGE_LIMIT)
    const seen: string[] = []
    for (let n = 0; n < pages; n++) {
      const offset = ((first + n) % pages) * MAX_PAGE_LIMIT
      const page = await this.epcc
        .switchAccountTokens(activeToken, { offset, limit: MAX_PAGE_LIMIT })
        .catch((err: unknown) => {
          throw asApiError(err)
        })
      const i = page.tokens.findIndex((t) => t.accountId === accountId)
      const found = page.tokens[i]
      if (found) {
        // The first page stays in place; accounts found further are kept after it, the oldest dropped first.
        const head = entry.tokens.slice(0, MAX_PAGE_LIMIT)
        const tail = entry.tokens.slice(MAX_PAGE_LIMIT).filter((t) => t.accountId !== accountId)
        const tokens = [...head, ...[...tail, found].slice(-(MAX_VAULT_TOKENS - head.length))]
        if (!(await this.vault.update(auth.vaultId, { tokens }, this.ttl(auth))))
          throw new SessionExpiredError()
        return { token: found, index: offset + i }
      }
      for (const t of page.tokens) seen.push(t.accountId)
    }
    // Only while the session lives: the list goes with its tokens.
    if (await this.vault.expire(auth.vaultId, this.ttl(auth)))
      await this.kv.set(accountIdsKey(auth.vaultId), JSON.stringify(seen), this.ttl(auth))
    return undefined
  }

  private async entry(auth: SignedIn): Promise<VaultEntry> {
    const entry = await this.vault.get(auth.vaultId)
    if (!entry) throw new SessionExpiredError()
    return entry
  }

  private activeEntry(auth: SignedIn, entry: VaultEntry): AccountToken {
    const token = entry.tokens.find((t) => t.accountId === auth.activeAccount.id)
    if (!token) throw new SessionExpiredError()
    return token
  }

  /** The session's tokens live no longer than the session: to its deadline. */
  private ttl(auth: SignedIn): number {
    return sessionDeadline(auth, this.policy) - this.now()
  }
}

/** Every account id of the member, once all of EPCC's pages were read (for a member of over 100 accounts). */
function accountIdsKey(vaultId: string): string {
  return `accounts:${vaultId}`
}

function pickToken(state: SignedIn): Pick<SignedIn, 'tokenIssuedAt' | 'tokenExpiresAt'> {
  return { tokenIssuedAt: state.tokenIssuedAt, tokenExpiresAt: state.tokenExpiresAt }
}

function asLoginError(
  err: unknown,
  step: string,
  rejected: 'login_failed' | 'upstream_unavailable' = 'login_failed',
) {
  if (err instanceof EpccError) {
    return new LoginError(
      err.kind === 'rejected' ? rejected : 'upstream_unavailable',
      `${step}: ${err.message}`,
    )
  }
  return err
}

function asApiError(err: unknown) {
  if (err instanceof EpccError && err.kind === 'rejected' && err.status === 401)
    return new SessionExpiredError()
  if (err instanceof EpccError) {
    return new BffError(
      502,
      'upstream_unavailable',
      'Elastic Path did not answer as expected; try again shortly.',
    )
  }
  return err
}
