import type { LoginTransactions } from './login.js'
import type { MemberSessions } from './member-sessions.js'
import type { MemberSessionIndex } from './session/member-index.js'

/** Who ended a member's sessions: the member ("sign out everywhere") or an operator. */
export type RevokedBy = 'member' | 'operator'

/**
 * Ends every session of a member, wherever it was created: each record, its tokens (by vault id, so a session
 * that switched account on the way loses them too) and its pending logins. The number of sessions ended.
 * Used by the replicas and by `npm run revoke`.
 */
export function sessionRevoker(
  index: MemberSessionIndex,
  sessions: MemberSessions,
  logins: LoginTransactions,
): (memberId: string) => Promise<number> {
  return (memberId) =>
    index.revoke(memberId, async (vaultId, record) => {
      await sessions.end({ vaultId })
      if (record?.logins) await logins.discard(record.logins)
    })
}
