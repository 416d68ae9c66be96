import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { endSession } from '../plugins/session.js'
import { BffError } from '../src/errors.js'
import { Account, apiSecurity, errors } from './schemas.js'

/** The storefront's auth calls (contract §3.2): the profiles to offer, and logout. */
const authApi: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/auth/profiles',
    {
      schema: {
        summary: 'The OIDC profiles (sign-in options) of the realm',
        tags: ['auth'],
        security: apiSecurity,
        response: { 200: Type.Object({ data: Type.Array(Account) }), ...errors.csrf, ...errors.unavailable },
      },
    },
    async () => {
      const realm = await app.realm.current().catch(() => {
        throw new BffError(503, 'upstream_unavailable', 'Elastic Path did not answer; try again shortly.')
      })
      return { data: realm.profiles.map((p) => ({ id: p.id, name: p.name })) }
    },
  )

  app.post(
    '/auth/logout',
    {
      schema: {
        summary:
          'Log out: the session is deleted server-side and the cookie expired (also without a session)',
        tags: ['auth'],
        security: apiSecurity,
        response: { 204: { description: 'Logged out' }, ...errors.csrf, ...errors.unavailable },
      },
      bodyLimit: 1024,
    },
    async (request, reply) => {
      const memberId = request.session.auth?.member.id
      await endSession(request, reply)
      if (memberId) request.log.info({ memberId }, 'logout')
      return reply.code(204).send()
    },
  )
}

export default authApi
