import type { Member } from '../epcc/client.js'

export interface AccountRef {
  id: string
  name: string
}

/** What a signed-in session holds besides its tokens (those live in the token vault). */
export interface SignedIn {
  member: Member
  activeAccount: AccountRef
  /** Every account of the member (`meta.results.total`), not just the ones we hold tokens for. */
  accountCount: number
  /** Key of this session's token vault entry; never leaves the server. */
  vaultId: string
  /** Offset of the last account page listed beyond the tokens held: where a switch looks first. */
  listedOffset?: number
  /** Position of the active account in EPCC's list: which page renews its token. */
  activeIndex: number
  /** When the active account token was issued and when it expires (epoch ms). */
  tokenIssuedAt: number
  tokenExpiresAt: number
  createdAt: number
  lastSeenAt: number
  /** A coarse description of the browser that signed in ("Chrome on macOS"), for the member's device list. */
  client?: string
}

export interface SessionPolicy {
  idleMs: number
  absoluteMs: number
}

/** The moment the session ends if no further request comes (contract §4 `expiresAt`). */
export function sessionDeadline(auth: SignedIn, policy: SessionPolicy): number {
  return Math.min(auth.lastSeenAt + policy.idleMs, auth.createdAt + policy.absoluteMs, auth.tokenExpiresAt)
}

/**
 * Renewal starts once less than a quarter of the active token's lifetime, at most 5 minutes, remains
 * (contract §6 "Renewal").
 */
export function renewalDue(auth: SignedIn, now: number): boolean {
  const lifetime = auth.tokenExpiresAt - auth.tokenIssuedAt
  return auth.tokenExpiresAt - now < Math.min(lifetime / 4, 5 * 60_000)
}

/**
 * `lastSeenAt` is written back at most this often, so that a read that changes nothing costs no store write;
 * the idle deadline is therefore exact to within this interval.
 */
export function touchIntervalMs(policy: SessionPolicy): number {
  return Math.min(60_000, Math.floor(policy.idleMs / 10))
}
