import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { addPendingLogin } from '../plugins/session.js'
import { EpccError } from '../src/epcc/errors.js'
import { BffError } from '../src/errors.js'
import { beginLogin } from '../src/login.js'
import { Realm } from '../src/realm.js'
import { resolveReturnTo } from '../src/return-to.js'
import { errors, redirect } from './schemas.js'

const LoginQuery = Type.Object({
  profile: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  // Any string: one that is not allowed is replaced by FRONTEND_URL, never refused (contract §3.1).
  returnTo: Type.Optional(Type.String()),
  prompt: Type.Optional(Type.String({ pattern: '^[a-z_]+( [a-z_]+)*$', maxLength: 64 })),
  ui_locales: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+( [A-Za-z0-9-]+)*$', maxLength: 64 })),
})

/** `GET /auth/login`: starts an authorization-code + PKCE login at the realm's EPCC OIDC profile. */
const login: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app
  let lastRefusalLoggedAt = 0

  app.get(
    '/auth/login',
    {
      schema: {
        summary: 'Start a login (a browser navigation)',
        description:
          'Redirects to the EPCC authorization endpoint of the profile, with PKCE S256, and sets the session cookie.',
        tags: ['navigation'],
        querystring: LoginQuery,
        response: {
          ...redirect('To the authorization endpoint; or to the error landing with `upstream_unavailable`'),
          400: errors.error('`unknown_profile`, `profile_required` or `bad_request`'),
          ...errors.rateLimited,
          ...errors.unavailable,
        },
      },
      config: { rateLimit: {}, navigation: true },
    },
    async (request, reply) => {
      const realm = await app.realm.current().catch((err: Error) => {
        const refused = err instanceof EpccError && err.kind === 'rejected'
        request.log.warn(
          { err: err.message },
          refused
            ? 'login not started: EPCC refused the realm read'
            : 'login not started: EPCC did not answer',
        )
        return undefined
      })
      if (!realm) return reply.redirect(`${config.loginErrorUrl}?error=upstream_unavailable`, 302)
      const profile = Realm.pickProfile(realm, request.query.profile)
      const wait = app.logins.started.start()
      if (wait > 0) {
        // Once a minute at most: a flood must not become a flood of log lines too.
        if (Date.now() - lastRefusalLoggedAt >= 60_000) {
          lastRefusalLoggedAt = Date.now()
          request.log.warn(
            { pendingLoginLimit: config.pendingLoginLimit },
            'logins refused: too many pending',
          )
        }
        reply.header('retry-after', String(wait))
        throw new BffError(503, 'overloaded', 'Too many logins are pending; try again shortly.')
      }
      const { transaction, authorizationUrl } = await beginLogin({
        profile,
        clientId: realm.clientId,
        redirectUri: config.redirectUri,
        returnTo: resolveReturnTo(request.query.returnTo, config),
        prompt: request.query.prompt,
        uiLocales: request.query.ui_locales,
      })
      await app.logins.save(transaction)
      // The login belongs to this browser: its state is listed in the browser's session (contract §6 "Binding").
      const evicted = await addPendingLogin(request, reply, transaction.state)
      await app.logins.discard(evicted)
      return reply.redirect(authorizationUrl.href, 302)
    },
  )
}

export default login
