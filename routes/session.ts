import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { saveSignedIn, signedInMember, switchActiveAccount } from '../plugins/session.js'
import { MAX_PAGE_LIMIT } from '../src/epcc/client.js'
import { Account, apiSecurity, errors, SessionBody } from './schemas.js'

const AccountsQuery = Type.Object({
  'page[offset]': Type.Integer({ minimum: 0, maximum: 10_000, default: 0 }),
  'page[limit]': Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: 25 }),
})
const AccountsBody = Type.Object({
  data: Type.Array(Account),
  meta: Type.Object({
    page: Type.Object({ offset: Type.Integer(), limit: Type.Integer() }),
    results: Type.Object({ total: Type.Integer() }),
  }),
})
const DevicesBody = Type.Object(
  {
    data: Type.Array(
      Type.Object({
        current: Type.Boolean({ description: 'The session of this browser' }),
        createdAt: Type.String({ format: 'date-time', description: 'When it signed in' }),
        lastUsedAt: Type.String({ format: 'date-time', description: 'Its last request, to within a minute' }),
        client: Type.String({ description: 'A coarse description of the browser, e.g. "Chrome on macOS"' }),
      }),
    ),
  },
  { description: "The member's live sessions, oldest first; never an id or a token" },
)

const SwitchBody = Type.Object(
  // EPCC account ids are UUIDs (accounts.yaml `Account.id`).
  {
    accountId: Type.String({
      pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    }),
  },
  { additionalProperties: false },
)

/** The signed-in member's session (contract §3.2): who, which accounts, switch the active one. */
const session: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/session',
    {
      config: { apiRateLimit: true },
      schema: {
        summary: 'Who is signed in, the active account, and when the session ends',
        tags: ['session'],
        security: apiSecurity,
        response: {
          200: SessionBody,
          ...errors.unauthenticated,
          ...errors.csrf,
          ...errors.rateLimited,
          ...errors.unavailable,
        },
      },
    },
    async (request, reply) => {
      const auth = await signedInMember(request, reply)
      return app.memberSessions.view(auth)
    },
  )

  app.get(
    '/session/accounts',
    {
      config: { apiRateLimit: true },
      schema: {
        summary: "One page of the member's accounts",
        tags: ['session'],
        security: apiSecurity,
        querystring: AccountsQuery,
        response: {
          200: AccountsBody,
          ...errors.badRequest,
          ...errors.unauthenticated,
          ...errors.csrf,
          ...errors.rateLimited,
          ...errors.unavailable,
        },
      },
    },
    async (request, reply) => {
      const auth = await signedInMember(request, reply)
      const listed = await app.memberSessions.accounts(
        auth,
        request.query['page[offset]'],
        request.query['page[limit]'],
      )
      if (listed.auth !== auth) await saveSignedIn(request, listed.auth)
      return listed.page
    },
  )

  app.get(
    '/session/devices',
    {
      schema: {
        summary: "The member's live sessions, in every browser",
        tags: ['session'],
        security: apiSecurity,
        response: {
          200: DevicesBody,
          ...errors.unauthenticated,
          ...errors.csrf,
          ...errors.rateLimited,
          ...errors.unavailable,
        },
      },
      config: { apiRateLimit: true },
    },
    async (request, reply) => {
      const auth = await signedInMember(request, reply)
      const devices = await app.memberIndex.list(auth.member.id)
      return {
        data: devices.map(({ vaultId, ...device }) => ({ current: vaultId === auth.vaultId, ...device })),
      }
    },
  )

  app.put(
    '/session/active-account',
    {
      config: { apiRateLimit: true },
      schema: {
        summary: 'Switch the active account (the session id changes)',
        tags: ['session'],
        security: apiSecurity,
        body: SwitchBody,
        response: {
          200: SessionBody,
          ...errors.badRequest,
          ...errors.unauthenticated,
          ...errors.csrf,
          ...errors.notFound("`unknown_account`: not one of this member's accounts"),
          ...errors.rateLimited,
          ...errors.unavailable,
        },
      },
      bodyLimit: 1024,
    },
    async (request, reply) => {
      const auth = await signedInMember(request, reply)
      const switched = await switchActiveAccount(request, reply, auth, request.body.accountId)
      request.log.info(
        { memberId: switched.member.id, accountId: switched.activeAccount.id },
        'account switched',
      )
      return app.memberSessions.view(switched)
    },
  )
}

export default session
