import fastifyCookie, { Signer } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { type BffError, unauthenticated } from '../src/errors.js'
import { LoginTransactions } from '../src/login.js'
import { MemberSessions, SessionExpiredError } from '../src/member-sessions.js'
import type { SessionPolicy, SignedIn } from '../src/session/model.js'
import { RequestSession } from '../src/session/request-session.js'
import { SessionRecordStore } from '../src/session/store.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** This browser's session: read once per request, written back only when a field was assigned. */
    session: RequestSession
  }
  interface FastifyInstance {
    logins: LoginTransactions
    memberSessions: MemberSessions
    /** Expires the session cookie with the name and attributes it was set with (contract §2). */
    clearSessionCookie(reply: FastifyReply): void
  }
}

/**
 * The session cookie (contract §2) and server-side session records over our sealed store: no record or
 * cookie until something is stored, and a read that changes nothing writes nothing, signs nothing and hashes
 * nothing (@fastify/session, used before, serialized and SHA-256-hashed the whole session twice and signed
 * its id twice on every request). The cookie holds the session id signed with the first `SESSION_SECRET`
 * (HMAC-SHA256, the format @fastify/session used, so existing cookies stay valid); every entry verifies.
 * Only the clears we mean (logout, an ended session) expire the cookie: a stale cookie resolves to nothing,
 * and expiring it could wipe the new cookie another tab was just given.
 * @see https://github.com/fastify/fastify-cookie#manual-cookie-unsigning
 */
export default fp(
  async (app) => {
    const { session: cfg } = app.config
    const policy: SessionPolicy = { idleMs: cfg.idleTimeoutS * 1000, absoluteMs: cfg.absoluteTimeoutS * 1000 }
    const cookie = { path: '/', httpOnly: true, secure: cfg.secure, sameSite: 'lax' } as const

    if (cfg.secure && app.config.trustProxy === false) {
      app.log.warn(
        'PUBLIC_URL is https but TRUST_PROXY is false: the Secure cookie is only sent over TLS to us',
      )
    }

    await app.register(fastifyCookie)
    const signer = new Signer(cfg.secrets)
    const store = new SessionRecordStore(app.kv, policy)

    app.decorateRequest('session', null as unknown as RequestSession)
    app.addHook('onRequest', async (request) => {
      const raw = request.cookies[cfg.cookieName]
      const signed = raw === undefined ? undefined : signer.unsign(raw)
      const record = signed?.valid && signed.value ? await store.get(signed.value) : undefined
      if (!signed?.value || !record) {
        request.session = new RequestSession(store)
        return
      }
      request.session = new RequestSession(store, { id: signed.value, record })
      if (signed.renew) {
        // Signed with an older secret, so sealed with its key too: write the record again (sealed and signed
        // with the newest) and seal the tokens again, so that the old secret can be dropped (README).
        request.session.markChanged()
        if (record.auth) await app.memberSessions.reseal(record.auth)
      }
    })

    app.addHook('onSend', async (request, reply, payload) => {
      const session = request.session
      // A Secure cookie would not come back over plain http: neither store nor set one there.
      if (!session?.isChanged || (cfg.secure && request.protocol !== 'https')) return payload
      await store.set(session.sessionId, session.record())
      // The cookie may live as long as a session can; the server enforces idle and absolute deadlines.
      reply.setCookie(cfg.cookieName, signer.sign(session.sessionId), {
        ...cookie,
        expires: new Date(Date.now() + policy.absoluteMs),
      })
      return payload
    })

    app.decorate('logins', new LoginTransactions(app.kv))
    app.decorate(
      'memberSessions',
      new MemberSessions(app.epcc, app.kv, policy, {
        onRenewal: (outcome) => app.metrics.renewals.inc({ outcome }),
      }),
    )
    app.decorate('clearSessionCookie', (reply: FastifyReply) => {
      reply.clearCookie(cfg.cookieName, cookie)
    })
  },
  { name: 'session', dependencies: ['config', 'store', 'epcc', 'metrics'] },
)

/**
 * The signed-in member of this request, with a token that is not due for renewal (a request that carries the
 * session cookie is "use", contract §6), or `notSignedIn()` (`401 unauthenticated` by default). A session past
 * its deadline, or whose renewal EPCC refused, is deleted and its cookie expired. `lastSeenAt` is written
 * back at most once per touch interval.
 */
export async function signedInMember(
  request: FastifyRequest,
  reply: FastifyReply,
  notSignedIn: () => BffError = unauthenticated,
): Promise<SignedIn> {
  let auth = request.session.auth
  if (!auth) throw notSignedIn()
  const sessions = request.server.memberSessions
  try {
    const live = await sessions.live(auth)
    if (!live) throw new SessionExpiredError('deadline')
    auth = await sessions.fresh(live)
  } catch (err) {
    if (!(err instanceof SessionExpiredError)) throw err
    const event = err.reason === 'renewal_refused' ? 'renewal failed' : 'session expired'
    request.log.info({ memberId: auth.member.id, reason: err.reason }, event)
    await endSession(request, reply)
    throw notSignedIn()
  }
  const touched = sessions.touched(auth) ?? auth
  if (touched !== request.session.auth) request.session.auth = touched
  return touched
}

/** Deletes the session, its tokens and its pending logins server-side, and expires the cookie. */
export async function endSession(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { auth, logins } = request.session
  if (auth) await request.server.memberSessions.end(auth)
  if (logins) await request.server.logins.discard(logins)
  await request.session.destroy()
  request.server.clearSessionCookie(reply)
}
