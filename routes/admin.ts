import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { BffError } from '../src/errors.js'
import { errors } from './schemas.js'

// EPCC account member ids are UUIDs (account-members.yaml `AccountMember.id`).
const MemberParams = Type.Object({
  memberId: Type.String({
    pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  }),
})
const MemberSessionsBody = Type.Object(
  {
    data: Type.Array(
      Type.Object({
        createdAt: Type.String({ format: 'date-time', description: 'When it signed in' }),
        lastUsedAt: Type.String({ format: 'date-time', description: 'Its last request, to within a minute' }),
        client: Type.String({ description: 'A coarse description of the browser, e.g. "Chrome on macOS"' }),
      }),
    ),
  },
  { description: "The member's live sessions, oldest first; never an id or a token" },
)
const RevokedBody = Type.Object({
  revoked: Type.Integer({ description: 'How many sessions were ended' }),
})
const adminErrors = {
  ...errors.badRequest,
  401: errors.error('`unauthorized`: no `Authorization: Bearer <ADMIN_TOKEN>`, or a wrong one'),
  ...errors.rateLimited,
  ...errors.unavailable,
}
// Operators call these from a terminal or a back office, never from a browser: no CORS answer, no cookie.
const config = { rateLimit: {}, cors: false, sessionless: true } as const
const adminSecurity = [{ adminToken: [] }]

/** The operators' view of a member's sessions, and revocation (only served when `ADMIN_TOKEN` is set). */
const admin: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/admin/members/:memberId/sessions',
    {
      schema: {
        summary: "A member's live sessions, in every browser",
        tags: ['admin'],
        security: adminSecurity,
        params: MemberParams,
        response: { 200: MemberSessionsBody, ...adminErrors },
      },
      config,
    },
    async (request) => {
      const devices = await app.memberIndex.list(request.params.memberId)
      return { data: devices.map(({ vaultId: _, ...device }) => device) }
    },
  )

  // A preflight is refused like any other request without the token, and gets no CORS answer.
  app.options('/admin/*', { schema: { hide: true }, config }, async () => {
    throw new BffError(404, 'not_found', 'No such route.')
  })

  app.delete(
    '/admin/members/:memberId/sessions',
    {
      schema: {
        summary:
          "End every session of a member, on every replica (each one's next request: 401 session_expired)",
        tags: ['admin'],
        security: adminSecurity,
        params: MemberParams,
        response: { 200: RevokedBody, ...adminErrors },
      },
      config,
    },
    async (request) => ({
      revoked: await app.revokeMemberSessions(request.params.memberId, 'operator', request.log),
    }),
  )
}

export default admin
