import { type AccountToken, type EpccClient, MAX_PAGE_LIMIT } from './epcc/client.js'
import { EpccError } from './epcc/errors.js'
import { BffError, LoginError, unauthenticated, unknownAccount } from './errors.js'
import {
  type AccountRef,
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

/**
 * What a signed-in member can do with their session: sign in from an authorization code, read it, page
 * through their accounts, switch the active account, sign out. Framework-free; routes call it.
 */
export class MemberSessions {
  constructor(
    private readonly epcc: EpccClient,
    private readonly vault: TokenVault,
    readonly policy: SessionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

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
      tokenExpiresAt: first.expiresAt,
      createdAt: now,
      lastSeenAt: now,
    }
    await this.vault.put(auth.vaultId, { tokens: page.tokens }, this.vaultTtl(auth, page.tokens))
    return auth
  }

  /** True once the session is past its idle or absolute deadline or its active token has expired. */
  isOver(auth: SignedIn): boolean {
    return this.now() >= sessionDeadline(auth, this.policy)
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

  /** One page of the member's accounts; pages beyond the tokens we hold come from EPCC's switch list. */
  async accounts(auth: SignedIn, offset: number, limit: number): Promise<AccountsPage> {
    const entry = await this.entry(auth)
    let tokens: AccountToken[]
    let total = auth.accountCount
    if (offset + limit <= entry.tokens.length || entry.tokens.length >= auth.accountCount) {
      tokens = entry.tokens.slice(offset, offset + limit)
    } else {
      const page = await this.epcc
        .switchAccountTokens(this.activeToken(auth, entry), { offset, limit })
        .catch((err: unknown) => {
          throw asApiError(err)
        })
      tokens = page.tokens
      total = page.total
    }
    return {
      data: tokens.map((t) => ({ id: t.accountId, name: t.accountName })),
      meta: { page: { offset, limit }, results: { total } },
    }
  }

  /** The state with `accountId` active; `unknown_account` when it is not one of the member's accounts. */
  async switchAccount(auth: SignedIn, accountId: string): Promise<SignedIn> {
    const entry = await this.entry(auth)
    let token = entry.tokens.find((t) => t.accountId === accountId)
    if (!token && entry.tokens.length < auth.accountCount) {
      token = await this.findBeyondFirstPage(auth, entry, accountId)
    }
    if (!token) throw unknownAccount()
    return {
      ...auth,
      activeAccount: { id: token.accountId, name: token.accountName },
      tokenExpiresAt: token.expiresAt,
      lastSeenAt: this.now(),
    }
  }

  /** Deletes the session's tokens. */
  async end(auth: SignedIn): Promise<void> {
    await this.vault.delete(auth.vaultId)
  }

  private async findBeyondFirstPage(
    auth: SignedIn,
    entry: VaultEntry,
    accountId: string,
  ): Promise<AccountToken | undefined> {
    const activeToken = this.activeToken(auth, entry)
    for (let offset = 0; offset < auth.accountCount; offset += MAX_PAGE_LIMIT) {
      const page = await this.epcc
        .switchAccountTokens(activeToken, { offset, limit: MAX_PAGE_LIMIT })
        .catch((err: unknown) => {
          throw asApiError(err)
        })
      const found = page.tokens.find((t) => t.accountId === accountId)
      if (found) {
        const tokens = [...entry.tokens.filter((t) => t.accountId !== accountId), found].slice(
          -MAX_VAULT_TOKENS,
        )
        await this.vault.put(auth.vaultId, { tokens }, this.vaultTtl(auth, tokens))
        return found
      }
      if (page.tokens.length === 0) break
    }
    return undefined
  }

  private async entry(auth: SignedIn): Promise<VaultEntry> {
    const entry = await this.vault.get(auth.vaultId)
    if (!entry) throw unauthenticated()
    return entry
  }

  private activeToken(auth: SignedIn, entry: VaultEntry): string {
    const token = entry.tokens.find((t) => t.accountId === auth.activeAccount.id)
    if (!token) throw unauthenticated()
    return token.token
  }

  /** The vault lives as long as the session could (absolute deadline) or its last token, whichever is first. */
  private vaultTtl(auth: SignedIn, tokens: AccountToken[]): number {
    const lastToken = Math.max(...tokens.map((t) => t.expiresAt))
    return Math.min(auth.createdAt + this.policy.absoluteMs, lastToken) - this.now()
  }
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
  if (err instanceof EpccError && err.kind === 'rejected' && err.status === 401) {
    return new BffError(401, 'session_expired', 'Elastic Path no longer accepts this session; sign in again.')
  }
  if (err instanceof EpccError) {
    return new BffError(
      502,
      'upstream_unavailable',
      'Elastic Path did not answer as expected; try again shortly.',
    )
  }
  return err
}
