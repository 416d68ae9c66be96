import type { LoginTransactions } from './login.js'
import type { MemberSessions } from './member-sessions.js'
import type { EndRevoked, MemberSessionIndex } from './session/member-index.js'

/**
 * Who ended a member's sessions: the member ("sign out everywhere"), an operator, or the limit of sessions per
 * member (a new login ended the least recently used).
 */
export type RevokedBy = 'member' | 'operator' | 'limit'

/** Ending a member's sessions, every one or those beyond the limit. Each returns how many ended. */
export interface SessionRevoker {
  all(memberId: string): Promise<number>
  beyondLimit(memberId: string, max: number): Promise<number>
}

/**
 * Ends sessions of a member, wherever they were created: each record, its tokens (by vault id, so a session
 * that switched account on the way loses them too) and its pending logins. Used by the replicas and by
 * `npm run revoke`.
 */
export function sessionRevoker(
  index: MemberSessionIndex,
  sessions: MemberSessions,
  logins: LoginTransactions,
): SessionRevoker {
  const end: EndRevoked = async (vaultId, record) => {
    await sessions.end({ vaultId })
    if (record?.logins) await logins.discard(record.logins)
  }
  return {
    all: (memberId) => index.revoke(memberId, end),
    beyondLimit: (memberId, max) => index.trim(memberId, max, end),
  }
}
