/**
 * The one error vocabulary of the BFF: a stable `code` from contract §3 and the HTTP status it maps to.
 * Messages are fixed texts written for the storefront developer; they never carry request data.
 */
export class BffError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'BffError'
  }
}

export const unauthenticated = () => new BffError(401, 'unauthenticated', 'No live session; sign in again.')
/** The cookie names a session that a login or an account switch in another tab replaced: retry once. */
export const sessionReplaced = () =>
  new BffError(401, 'session_replaced', 'This session was replaced by a newer one in this browser; retry.')
export const unknownAccount = () => new BffError(404, 'unknown_account', 'That account is not one of yours.')
export const sessionStoreUnavailable = () =>
  new BffError(503, 'session_store_unavailable', 'The session store is unavailable; try again shortly.')

/** Why a login did not complete: the `?error=` codes of contract §3.1. */
export type LoginErrorCode =
  | 'access_denied'
  | 'login_expired'
  | 'login_failed'
  | 'upstream_unavailable'
  | 'no_accounts'

export class LoginError extends Error {
  constructor(
    readonly code: LoginErrorCode,
    readonly reason: string,
  ) {
    super(`login failed: ${code} (${reason})`)
    this.name = 'LoginError'
  }
}
