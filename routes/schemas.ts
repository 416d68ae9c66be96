import { Type } from '@fastify/type-provider-typebox'

/** Schemas shared by several routes; they drive validation, serialisation and `GET /openapi.json`. */

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'A stable code from the contract, e.g. `unauthenticated`, `csrf`' }),
    message: Type.String({ description: 'A human-readable explanation; never carries request data' }),
  },
  { description: 'Every error the BFF itself answers' },
)

const error = (description: string) => ({ ...ErrorBody, description })

export const errors = {
  badRequest: { 400: error('`bad_request`: a malformed query or body') },
  csrf: { 403: error('`csrf`: no `X-CSRF: 1`, or a foreign `Origin`') },
  unauthenticated: {
    401: error(
      '`unauthenticated`: no live session (the cookie is expired when it named one that ended); `session_replaced`: a login or account switch in another tab replaced this id — retry once, no cookie change',
    ),
  },
  notFound: (description: string) => ({ 404: error(description) }),
  rateLimited: { 429: error('`rate_limited`, with `Retry-After`') },
  unavailable: { 503: error('`upstream_unavailable`, `session_store_unavailable` or `overloaded`') },
  error,
}

/** Routes the storefront calls with `fetch`: the session cookie and the CSRF header. */
export const apiSecurity = [{ sessionCookie: [], csrfHeader: [] }]

export const Account = Type.Object({ id: Type.String(), name: Type.String() })

export const SessionBody = Type.Object(
  {
    member: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
    activeAccount: Account,
    accountCount: Type.Integer({ description: 'Every account of the member' }),
    expiresAt: Type.String({
      format: 'date-time',
      description: 'When the session ends if no further request comes',
    }),
  },
  { description: 'Who is signed in' },
)

export const redirect = (description: string) => ({ 302: { description } })
