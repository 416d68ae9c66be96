import { setTimeout as sleep } from 'node:timers/promises'
import fastifyCookie from '@fastify/cookie'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { type BffError, sessionReplaced, unauthenticated } from '../src/errors.js'
import { LoginTransactions, MAX_PENDING_LOGINS } from '../src/login.js'
import { MemberSessions, SessionExpiredError } from '../src/member-sessions.js'
import { type RevokedBy, sessionRevoker } from '../src/revocation.js'
import { MemberSessionIndex } from '../src/session/member-index.js'
import type { SessionPolicy, SignedIn } from '../src/session/model.js'
import { type BrowserSession, type SessionRecord, SessionRecords } from '../src/session/records.js'
import { describeClient } from '../src/user-agent.js'
import { addRouteHook } from './route-hooks.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** What this request's session cookie names (read once, before the handler). */
    session: BrowserSession
  }
  interface FastifyContextConfig {
    /** The route has nothing to do with a browser's session: its cookie is not read (administration). */
    sessionless?: boolean
  }
  interface FastifyInstance {
    logins: LoginTransactions
    memberSessions: MemberSessions
    sessionRecords: SessionRecords
    /** Every member's live sessions, for listing and revoking them together. */
    memberIndex: MemberSessionIndex
    /**
     * Ends every session of `memberId`, on every replica: records and tokens gone at once, each one's next
     * request answered `401 session_expired`. An audit log line and a metric; the number ended.
     */
    revokeMemberSessions(memberId: string, by: RevokedBy, log: FastifyBaseLogger): Promise<number>
    /**
     * Ends the least recently used sessions of `memberId` beyond `MAX_SESSIONS_PER_MEMBER` (a login calls it
     * once its session is listed), like a revocation: audit line and metric when any ended.
     */
    endSessionsBeyondLimit(memberId: string, log: FastifyBaseLogger): Promise<void>
    /** Sets the session cookie to `id`, with the one attribute set of the cookie (contract §2). */
    setSessionCookie(reply: FastifyReply, id: string): void
    /** Expires the session cookie, with the same name and attributes it is set with. */
    clearSessionCookie(reply: FastifyReply): void
  }
}

const NONE: BrowserSession = { state: 'none' }
const ENDED: BrowserSession = { state: 'ended' }

/**
 * The session cookie (contract §2) and the server-side session behind it. The cookie holds a signed random
 * id and nothing else; reading it is the only thing that happens on every request. Every change of session
 * state is an explicit, conditional store operation made by the code that means it (`SessionRecords`), and
 * every `Set-Cookie` of the session cookie goes out through `setSessionCookie`/`clearSessionCookie` with one
 * attribute set: nothing is saved, and no cookie is sent, behind the handler's back. (This is why the
 * session layer is not @fastify/session: its save-on-send wrote back whatever a request had read, after a
 * logout too, and its own cookie clear dropped `Secure`; see docs/sessions.md.)
 * @see https://github.com/fastify/fastify-cookie
 */
export default fp(
  async (app) => {
    const { session: cfg } = app.config
    const policy: SessionPolicy = { idleMs: cfg.idleTimeoutS * 1000, absoluteMs: cfg.absoluteTimeoutS * 1000 }
    const attributes = { path: '/', httpOnly: true, secure: cfg.secure, sameSite: 'lax' } as const
    // The cookie may live as long as a session can; the server enforces idle and absolute deadlines.
    const setAttributes = { ...attributes, maxAge: cfg.absoluteTimeoutS }

    if (cfg.secure && app.config.trustProxy === false) {
      app.log.warn(
        'PUBLIC_URL is https but TRUST_PROXY is false: the Secure cookie is only sent over TLS to us',
      )
    }

    await app.register(fastifyCookie)
    const signer = app.sessionSigner
    const records = new SessionRecords(app.kv, policy)
    app.decorate('sessionRecords', records)
    const logins = new LoginTransactions(app.kv, app.config.pendingLoginLimit)
    app.decorate('logins', logins)
    const memberSessions = new MemberSessions(app.epcc, app.kv, policy, {
      onRenewal: (outcome) => app.metrics.renewals.inc({ outcome }),
    })
    app.decorate('memberSessions', memberSessions)
    const index = new MemberSessionIndex(app.kv, records, policy)
    app.decorate('memberIndex', index)
    const revoke = sessionRevoker(index, memberSessions, logins)
    const audit = (memberId: string, revoked: number, by: RevokedBy, log: FastifyBaseLogger) => {
      app.metrics.revokedSessions.inc({ by }, revoked)
      log.info({ memberId, revoked, by }, 'sessions revoked')
    }
    app.decorate('revokeMemberSessions', async (memberId: string, by: RevokedBy, log: FastifyBaseLogger) => {
      const revoked = await revoke.all(memberId)
      audit(memberId, revoked, by, log)
      return revoked
    })
    const { maxSessionsPerMember } = app.config
    app.decorate('endSessionsBeyondLimit', async (memberId: string, log: FastifyBaseLogger) => {
      // After the login's session exists: a store that fails here must not fail the login (its cookie would
      // never be set). The next login applies the limit again.
      const revoked = await revoke.beyondLimit(memberId, maxSessionsPerMember).catch((err: unknown) => {
        log.warn({ memberId, err: err instanceof Error ? err.name : 'unknown' }, 'session limit not applied')
        return 0
      })
      if (revoked > 0) audit(memberId, revoked, 'limit', log)
    })
    app.decorate('setSessionCookie', (reply: FastifyReply, id: string) => {
      reply.setCookie(cfg.cookieName, signer.sign(id), setAttributes)
    })
    app.decorate('clearSessionCookie', (reply: FastifyReply) => {
      reply.clearCookie(cfg.cookieName, attributes)
    })

    app.decorateRequest<BrowserSession | null>('session', null)
    // Every route but the sessionless ones reads the cookie, after the rate limits (plugins/rate-limit.ts).
    // Callback-style: no promise per request for the common case of no cookie.
    const readSession: onRequestHookHandler = (request, reply, done) => {
      const raw = request.cookies[cfg.cookieName]
      if (raw === undefined) {
        request.session = NONE
        done()
        return
      }
      const unsigned = signer.unsign(raw)
      if (!unsigned.valid) {
        request.session = ENDED
        done()
        return
      }
      records.resolve(unsigned.value).then((session) => {
        request.session = session
        // Signed with an older SESSION_SECRET: the cookie is signed again, and the stored values sealed
        // again, with the newest, so that the old secret can be dropped without signing anyone out.
        if (unsigned.renew && session.state === 'live') {
          app.setSessionCookie(reply, session.id)
          resealed(records, app.memberSessions, index, session).then(() => done(), done)
          return
        }
        done()
      }, done)
    }
    app.addHook('onRoute', (route) => {
      if (!route.config?.sessionless) addRouteHook(route, 'onRequest', readSession)
    })
  },
  { name: 'session', dependencies: ['config', 'store', 'epcc', 'metrics', 'rate-limit'] },
)

async function resealed(
  records: SessionRecords,
  sessions: MemberSessions,
  index: MemberSessionIndex,
  session: { id: string; record: SessionRecord },
): Promise<void> {
  if (!(await records.update(session.id, session.record)) || !session.record.auth) return
  await sessions.reseal(session.record.auth)
  await index.update(session.record.auth, session.id)
}

/**
 * The signed-in member of this request, with a token that is not due for renewal (a request that carries the
 * session cookie is "use", contract §6), or an error: `session_replaced` (no cookie change) for an id that a
 * login or switch replaced, else `notSignedIn()` (`401 unauthenticated` by default), with the cookie expired
 * when it named a session that ended. A session past its deadline, or whose renewal EPCC refused, is ended.
 * A changed state (renewed token, `lastSeenAt` at most once per touch interval) is written back only while
 * the session still lives.
 */
export async function signedInMember(
  request: FastifyRequest,
  reply: FastifyReply,
  notSignedIn: () => BffError = unauthenticated,
): Promise<SignedIn> {
  const session = request.session
  if (session.state === 'replaced') throw sessionReplaced()
  if (session.state === 'ended') {
    request.server.clearSessionCookie(reply)
    throw notSignedIn()
  }
  const auth = session.state === 'live' ? session.record.auth : undefined
  if (session.state !== 'live' || !auth) throw notSignedIn()
  const sessions = request.server.memberSessions
  let current: SignedIn
  try {
    const live = await sessions.live(auth)
    if (!live) throw new SessionExpiredError('deadline')
    current = await sessions.fresh(live)
  } catch (err) {
    if (!(err instanceof SessionExpiredError)) throw err
    await endedWhileServing(request, reply, auth, err)
    throw notSignedIn()
  }
  const touched = sessions.touched(current)
  if (touched) {
    await saveSignedIn(request, touched)
    await sessions.keep(touched)
    return touched
  }
  if (current !== auth) await saveSignedIn(request, current)
  return current
}

/**
 * The session of this request turned out to be over. If its record is still there, this request is the
 * one to end it (past its deadline, renewal refused, tokens gone): it is deleted and the cookie expired.
 * If not, something else ended it while this request was under way — a logout, a switch in another tab,
 * an operator — and the browser may hold a newer cookie by now: nothing is written, no cookie is sent.
 */
async function endedWhileServing(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: SignedIn,
  err: SessionExpiredError,
): Promise<void> {
  const session = request.session
  if (session.state === 'live' && !(await request.server.sessionRecords.get(session.id))) return
  const event = err.reason === 'renewal_refused' ? 'renewal failed' : 'session expired'
  request.log.info({ memberId: auth.member.id, reason: err.reason }, event)
  await endSession(request, reply)
}

/** Ends the session of a request whose tokens were found gone: see `endedWhileServing`. */
export async function tokensGone(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const session = request.session
  const auth = session.state === 'live' ? session.record.auth : undefined
  if (auth) await endedWhileServing(request, reply, auth, new SessionExpiredError('tokens_gone'))
}

/**
 * Writes the signed-in state of this request's session back, only while the session lives: a request that
 * finishes after a logout, a switch or an expiry writes nothing, and no cookie.
 */
export async function saveSignedIn(request: FastifyRequest, auth: SignedIn): Promise<void> {
  const session = request.session
  if (session.state !== 'live') return
  const record = { ...session.record, auth }
  if (await request.server.sessionRecords.update(session.id, record)) {
    request.session = { state: 'live', id: session.id, record }
    // The index follows the session's deadline, so that it lives as long as the session does.
    await request.server.memberIndex.update(auth, session.id)
  }
}

/** Makes `accountId` the active account of this request's member; the session gets a new id (contract §2). */
export function switchActiveAccount(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: SignedIn,
  accountId: string,
): Promise<SignedIn> {
  const { server } = request
  const session = request.session
  if (session.state !== 'live') return Promise.reject(unauthenticated())
  // The session went while we waited or worked: replaced (another tab switched first) or ended.
  const gone = async (): Promise<never> => {
    const now = await server.sessionRecords.resolve(session.id)
    if (now.state === 'replaced') throw sessionReplaced()
    server.clearSessionCookie(reply)
    throw unauthenticated()
  }
  return server.memberSessions.switchSession(auth, accountId, {
    ensureCurrent: async () => {
      if (!(await server.sessionRecords.get(session.id))) await gone()
    },
    replace: async (switched) => {
      const result = await server.sessionRecords.replace(session.id, (old) => ({ ...old, auth: switched }))
      if ('replacedBy' in result) throw sessionReplaced()
      if ('ended' in result) {
        // A logout took the session on our way: its tokens go too.
        if (result.ended?.auth) await server.memberSessions.end(result.ended.auth)
        return gone()
      }
      request.session = { state: 'live', ...result }
      server.setSessionCookie(reply, result.id)
      await server.memberIndex.update(switched, result.id)
    },
  })
}

/** How many replacements (switches, logins in other tabs) a stale id is followed through. */
const MAX_HOPS = 32

/**
 * Ends the browser's session: its record, tokens and pending logins are deleted server-side and the cookie
 * expired. For an id that logins or switches replaced, the session that replaced it last is ended: that is
 * the one this browser holds now.
 */
export async function endSession(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { server } = request
  const records = server.sessionRecords
  const session = request.session
  let ended: SessionRecord | undefined
  let id = session.state === 'live' || session.state === 'replaced' ? session.id : undefined
  // Follow replacements: taking each marker also withdraws a replacement still on its way
  // (SessionRecords.replace).
  for (let hop = 0; id !== undefined && hop < MAX_HOPS && !ended; hop++) {
    ended = await records.take(id)
    if (!ended) id = await records.takeReplacement(id)
  }
  if (!ended && session.state === 'live') ended = session.record
  if (ended?.auth)
    await Promise.all([server.memberSessions.end(ended.auth), server.memberIndex.remove(ended.auth)])
  if (ended?.logins) await server.logins.discard(ended.logins)
  request.session = NONE
  server.clearSessionCookie(reply)
}

/**
 * The live session that `id` has become through the replacements since (switches, logins in other tabs),
 * waiting a moment for one still on its way; undefined when it ended.
 */
async function currentSession(
  records: SessionRecords,
  id: string,
): Promise<{ id: string; record: SessionRecord } | undefined> {
  const until = Date.now() + 1000
  for (let hop = 0; hop < MAX_HOPS; ) {
    const now = await records.resolve(id)
    if (now.state === 'live') return now
    if (now.state === 'replaced') {
      id = now.replacedBy
      hop++
    } else if (hop === 0 || Date.now() > until) {
      return undefined
    } else {
      // Reached through a marker, but not written yet: the replacement is on its way.
      await sleep(20)
    }
  }
  return undefined
}

/**
 * Lists a pending login's `state` in this browser's session — the one its cookie names, or the one that
 * replaced it since, or a new one (then the cookie is set) — keeping at most `MAX_PENDING_LOGINS`. The states
 * dropped, oldest first, are returned for their transactions to be discarded.
 */
export async function addPendingLogin(
  request: FastifyRequest,
  reply: FastifyReply,
  state: string,
): Promise<string[]> {
  const { server } = request
  const records = server.sessionRecords
  const session = request.session
  // A login racing another login of this browser joins the pre-login session that replaced its id: that is
  // the cookie the browser holds (or is about to), and it is not overwritten. Never a signed-in one: an id
  // that was replaced by a login is not a key to the session that replaced it (a planted pre-login cookie
  // would otherwise add the attacker's login to the victim's session — login CSRF).
  const joinable = (s: { id: string; record: SessionRecord } | undefined) => (s?.record.auth ? undefined : s)
  let target =
    session.state === 'live'
      ? { id: session.id, record: session.record }
      : session.state === 'replaced'
        ? joinable(await currentSession(records, session.id))
        : undefined
  for (let attempt = 0; target && attempt < MAX_HOPS; attempt++) {
    const pending = [...(target.record.logins ?? []), state]
    const dropped = pending.splice(0, Math.max(0, pending.length - MAX_PENDING_LOGINS))
    const record = { ...target.record, logins: pending }
    if (await records.update(target.id, record)) {
      request.session = { state: 'live', id: target.id, record }
      return dropped
    }
    target = joinable(await currentSession(records, target.id))
  }
  const record = { logins: [state] }
  const id = await records.create(record)
  request.session = { state: 'live', id, record }
  server.setSessionCookie(reply, id)
  return []
}

/**
 * Signs the browser in with `auth` after the login `state` completed: its session gets a new id (the old one
 * answers `session_replaced` for a while), the login leaves the pending list, a member signed in before is
 * signed out of that session's tokens, and the cookie is set. False when the browser's session ended while
 * the login ran, or another login or switch of this browser replaced it first: nothing is created.
 */
export async function completeLogin(
  request: FastifyRequest,
  reply: FastifyReply,
  state: string,
  auth: SignedIn,
): Promise<boolean> {
  const { server } = request
  const session = request.session
  if (session.state !== 'live') return false
  let previous: SignedIn | undefined
  const signedIn = { ...auth, client: describeClient(request.headers['user-agent']) }
  const result = await server.sessionRecords.replace(session.id, (old) => {
    previous = old.auth
    const logins = old.logins?.filter((s) => s !== state) ?? []
    return logins.length > 0 ? { auth: signedIn, logins } : { auth: signedIn }
  })
  if ('replacedBy' in result) return false
  if ('ended' in result) {
    if (result.ended?.auth) await server.memberSessions.end(result.ended.auth)
    return false
  }
  await server.memberIndex.add(signedIn, result.id)
  if (previous) await Promise.all([server.memberSessions.end(previous), server.memberIndex.remove(previous)])
  await server.endSessionsBeyondLimit(signedIn.member.id, request.log)
  request.session = { state: 'live', ...result }
  server.setSessionCookie(reply, result.id)
  return true
}
