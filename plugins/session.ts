import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { FastifyReply, FastifyRequest, Session } from 'fastify'
import fp from 'fastify-plugin'
import { type BffError, unauthenticated } from '../src/errors.js'
import { LoginTransactions } from '../src/login.js'
import { MemberSessions, SessionExpiredError } from '../src/member-sessions.js'
import type { SessionPolicy, SessionRecord, SignedIn } from '../src/session/model.js'
import { SessionSigner } from '../src/session/signer.js'
import { SessionRecordStore, sessionKey } from '../src/session/store.js'

declare module 'fastify' {
  interface Session extends SessionRecord {
    /** Set to re-issue a cookie signed with an older secret (see below). */
    resignedAt?: number
  }
  interface FastifyInstance {
    logins: LoginTransactions
    memberSessions: MemberSessions
    /** Expires the session cookie with the name and attributes it was set with (contract §2). */
    clearSessionCookie(reply: FastifyReply): void
  }
}

/**
 * The session cookie (contract §2) and server-side session records, via @fastify/cookie and
 * @fastify/session over our bounded store: no record or cookie until something is stored, no write on a
 * read that changed nothing.
 * @see https://github.com/fastify/session
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
    // @fastify/session verifies the cookie and signs the id again on every request: this signer remembers.
    const signer = new SessionSigner(cfg.secrets)
    await app.register(fastifySession, {
      secret: signer,
      cookieName: cfg.cookieName,
      saveUninitialized: false,
      rolling: false,
      store: new SessionRecordStore<Session>(app.kv, policy),
      // The cookie may live as long as a session can; the server enforces idle and absolute deadlines.
      cookie: { ...cookie, maxAge: policy.absoluteMs },
    })

    // @fastify/session 11.1.3 clears, instead of re-signing, a cookie signed with an older secret when the
    // request changes nothing (stack.md §4 pitfall 1): mark such sessions modified so the cookie is re-issued.
    // (Hooks on every request are callback-style: no promise per request for what is nearly always a no-op.)
    app.addHook('onRequest', (request, _reply, done) => {
      const raw = request.cookies[cfg.cookieName]
      const session = request.session
      if (
        raw &&
        session?.sessionId &&
        raw !== session.encryptedSessionId &&
        (session.auth || session.logins) &&
        signer.unsign(raw).renew
      ) {
        session.set('resignedAt', Date.now())
        // The stored values were sealed under the older secret too: seal the tokens again with the newest.
        if (session.auth) {
          app.memberSessions.reseal(session.auth).then(() => done(), done)
          return
        }
      }
      done()
    })

    app.decorate('logins', new LoginTransactions(app.kv, app.config.pendingLoginLimit))
    app.decorate(
      'memberSessions',
      new MemberSessions(app.epcc, app.kv, policy, {
        onRenewal: (outcome) => app.metrics.renewals.inc({ outcome }),
      }),
    )
    // @fastify/session clears the cookie of any request whose cookie names an unknown session (index.js
    // onSend). That wipes whatever the browser holds under that name — also the new cookie another tab was
    // just given by a login or an account switch — and logs the member out everywhere. A stale cookie is
    // harmless (it resolves to nothing), so only the clears we mean (logout, an ended session) go out.
    const intendedClears = new WeakSet<FastifyReply>()
    app.decorate('clearSessionCookie', (reply: FastifyReply) => {
      intendedClears.add(reply)
      reply.clearCookie(cfg.cookieName, cookie)
    })
    app.addHook('onSend', (_request, reply, payload, done) => {
      const header = reply.getHeader('set-cookie')
      if (header !== undefined && !intendedClears.has(reply)) {
        const lines = Array.isArray(header) ? header : [String(header)]
        const kept = lines.filter((line) => !line.startsWith(`${cfg.cookieName}=;`))
        if (kept.length !== lines.length) {
          reply.removeHeader('set-cookie')
          if (kept.length > 0) reply.header('set-cookie', kept)
        }
      }
      done(null, payload)
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

/** Makes `accountId` the active account of this request's member; the session gets a new id (contract §2). */
export function switchActiveAccount(
  request: FastifyRequest,
  auth: SignedIn,
  accountId: string,
): Promise<SignedIn> {
  const { server } = request
  const sessionId = request.session.sessionId
  return server.memberSessions.switchSession(auth, accountId, {
    isCurrent: async () => (await server.kv.get(sessionKey(sessionId))) !== undefined,
    replace: async (switched) => {
      await request.session.regenerate()
      // regenerate() put a new session object on the request
      request.session.auth = switched
    },
  })
}

/** Deletes the session, its tokens and its pending logins server-side, and expires the cookie. */
export async function endSession(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { auth, logins } = request.session
  if (auth) await request.server.memberSessions.end(auth)
  if (logins) await request.server.logins.discard(logins)
  await request.session.destroy()
  request.server.clearSessionCookie(reply)
}
