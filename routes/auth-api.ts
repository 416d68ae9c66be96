import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { endSession } from '../plugins/session.js'
import { BffError, sessionReplaced } from '../src/errors.js'
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

  // Logout logs out whatever its body and Content-Type (fetch wrappers send `application/json` with an empty
  // body, or none): its own scope reads any body as text, bounded, and never refuses it.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
    // A body too large or a Content-Type that does not parse still logs out; the body is not read further
    // and the connection is not kept.
    scope.setErrorHandler(async (err: { code?: string }, request, reply) => {
      if (!err.code?.startsWith('FST_ERR_CTP_')) throw err
      await endSession(request, reply)
      return reply.code(204).header('connection', 'close').send()
    })
    scope.post(
      '/auth/logout',
      {
        schema: {
          summary:
            'Log out: the session is deleted server-side and the cookie expired (also without a session)',
          description:
            'Any body and Content-Type are accepted. The JSON body `{"scope":"everywhere"}` ends every session of the signed-in member, in every browser and on every replica; any other body (or none) ends this session only.',
          tags: ['auth'],
          security: apiSecurity,
          response: { 204: { description: 'Logged out' }, ...errors.csrf, ...errors.unavailable },
        },
        bodyLimit: 1024,
      },
      async (request, reply) => {
        const session = request.session
        const everywhere = wantsEverywhere(request.body)
        // Only a live session signs its member out everywhere. An old cookie (an id a switch or login replaced)
        // is told to retry: the browser's current cookie goes with the retry; an old cookie alone is not enough.
        if (everywhere && session.state === 'replaced') throw sessionReplaced()
        const memberId = session.state === 'live' ? session.record.auth?.member.id : undefined
        if (memberId && everywhere) {
          await app.revokeMemberSessions(memberId, 'member', request.log)
        }
        await endSession(request, reply)
        if (memberId) request.log.info({ memberId }, 'logout')
        return reply.code(204).send()
      },
    )
  })
}

/** `{"scope":"everywhere"}`; a body that is not that JSON (or not JSON at all) logs out this session only. */
function wantsEverywhere(body: unknown): boolean {
  if (typeof body !== 'string' || body.length === 0) return false
  try {
    const value = JSON.parse(body) as { scope?: unknown } | null
    return typeof value === 'object' && value !== null && value.scope === 'everywhere'
  } catch {
    return false
  }
}

export default authApi
