import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { endSession } from '../plugins/session.js'
import { BffError } from '../src/errors.js'

/** The storefront's auth calls (contract §3.2): the profiles to offer, and logout. */
const authApi: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/auth/profiles', async () => {
    const realm = await app.realm.current().catch(() => {
      throw new BffError(503, 'upstream_unavailable', 'Elastic Path did not answer; try again shortly.')
    })
    return { data: realm.profiles.map((p) => ({ id: p.id, name: p.name })) }
  })

  app.post('/auth/logout', { bodyLimit: 1024 }, async (request, reply) => {
    const memberId = request.session.auth?.member.id
    await endSession(request, reply)
    if (memberId) request.log.info({ memberId }, 'logout')
    return reply.code(204).send()
  })
}

export default authApi
