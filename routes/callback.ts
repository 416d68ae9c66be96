import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { completeLogin } from '../plugins/session.js'
import { LoginError, type LoginErrorCode } from '../src/errors.js'
import { readAuthorizationResponse, STATE_PATTERN } from '../src/login.js'
import { Realm } from '../src/realm.js'
import { errors, redirect } from './schemas.js'

const CallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ pattern: STATE_PATTERN })),
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 2048 })),
  iss: Type.Optional(Type.String({ maxLength: 2048 })),
})

/**
 * `GET /oauth2/callback`: the end of a login. The state must be one this browser started; the transaction
 * is taken (single use) before anything else, the response checked, and only then is the code exchanged.
 * Any failure lands on the storefront's error page and leaves the browser's session as it was.
 */
const callback: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app

  const fail = (request: FastifyRequest, reply: FastifyReply, code: LoginErrorCode, reason: string) => {
    app.metrics.logins.inc({ outcome: code })
    request.log.info({ loginError: code, reason }, 'login failed')
    return reply.redirect(`${config.loginErrorUrl}?error=${code}`, 302)
  }

  app.get(
    '/oauth2/callback',
    {
      schema: {
        summary: 'The end of a login: EPCC redirects the browser here (a navigation)',
        description:
          'Success: 302 to the stored returnTo with a new session id. Failure: 302 to FRONTEND_URL + LOGIN_ERROR_PATH + `?error=` one of `access_denied`, `login_expired`, `login_failed`, `upstream_unavailable`, `no_accounts`.',
        tags: ['navigation'],
        querystring: CallbackQuery,
        response: { ...redirect('To returnTo, or to the error landing'), ...errors.rateLimited },
      },
      attachValidation: true,
      config: { rateLimit: {}, navigation: true },
    },
    async (request, reply) => {
      reply.header('referrer-policy', 'no-referrer')
      const query = request.query as Record<string, unknown>
      const state = typeof query.state === 'string' ? query.state : undefined
      if (request.validationError && (!state || !new RegExp(STATE_PATTERN).test(state))) {
        return fail(request, reply, 'login_expired', 'malformed state')
      }
      const session = request.session
      if (!state || session.state !== 'live' || !session.record.logins?.includes(state)) {
        return fail(request, reply, 'login_expired', 'state not issued to this browser')
      }
      const transaction = await app.logins.take(state)
      if (!transaction) return fail(request, reply, 'login_expired', 'state unknown, used or expired')
      if (request.validationError)
        return fail(request, reply, 'login_failed', 'malformed authorization response')

      try {
        const realm = await app.realm.current()
        const profile = Realm.pickProfile(realm, transaction.profileId)
        const params = new URL(request.url, 'http://callback.invalid').searchParams
        const code = readAuthorizationResponse(params, transaction, profile, realm.clientId)
        const auth = await app.memberSessions.signIn({
          code,
          codeVerifier: transaction.codeVerifier,
          redirectUri: config.redirectUri,
        })
        // A new session id at login; the pre-login id is replaced (session fixation, ASVS 7.2.4). Were the
        // browser's session ended meanwhile (a logout), the login does not bring it back.
        const signedIn = await completeLogin(request, reply, state, auth)
        if (!signedIn) {
          await app.memberSessions.end(auth)
          return fail(request, reply, 'login_expired', 'the session ended during the login')
        }
        app.metrics.logins.inc({ outcome: 'success' })
        request.log.info({ memberId: auth.member.id }, 'login succeeded')
        return reply.redirect(transaction.returnTo, 302)
      } catch (err) {
        if (err instanceof LoginError) return fail(request, reply, err.code, err.reason)
        request.log.error({ err: (err as Error).message }, 'login failed unexpectedly')
        return fail(request, reply, 'upstream_unavailable', 'internal failure')
      }
    },
  )
}

export default callback
