/** The BFF's `GET /session` response schema, as the bare route and the afternoon anchor declare it. */
import { type Static, Type } from '@fastify/type-provider-typebox'

const Account = Type.Object({ id: Type.String(), name: Type.String() })
export const SessionBody = Type.Object({
  member: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
  activeAccount: Account,
  accountCount: Type.Integer(),
  expiresAt: Type.String({ format: 'date-time' }),
})
export type SessionBody = Static<typeof SessionBody>
