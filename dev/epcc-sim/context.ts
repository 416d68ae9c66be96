/** What every route handler gets, plus the checks and pagination most of them share. */
import { type Req, type Res, sendError } from './http.js'
import type { AccountTokenClaims } from './jwt.js'
import type { SimState, StoreTokenKind } from './state.js'

export interface SimContext {
  state: SimState
  apiUrl: string
  authUrl: string
  idpUrl: string | undefined
}

export type Handler = (ctx: SimContext, req: Req, res: Res, params: string[]) => Promise<void> | void

export interface Route {
  method: string
  pattern: RegExp
  handler: Handler
}

export const route = (method: string, pattern: RegExp, handler: Handler): Route => ({
  method,
  pattern,
  handler,
})

export const ACCOUNT_TOKEN_HEADER = 'ep-account-management-authentication-token'

/** A valid implicit or client_credentials bearer, else a 401 in EPCC's words (errors.md). */
export function requireBearer(ctx: SimContext, req: Req, res: Res): StoreTokenKind | undefined {
  const kind = ctx.state.bearerKind(req.headers.authorization)
  if (!kind) sendError(res, ctx.state.quirks, 401, { title: 'Unable to validate access token' })
  return kind
}

/**
 * The account token in `EP-Account-Management-Authentication-Token`: its claims, `null` when the header is
 * absent and not required, or `undefined` once a 401 has been sent.
 */
export function accountToken(
  ctx: SimContext,
  req: Req,
  res: Res,
  opts: { required: boolean },
): AccountTokenClaims | null | undefined {
  const header = req.headers[ACCOUNT_TOKEN_HEADER]
  if (!header && !opts.required) return null
  const claims = ctx.state.verifyAccountToken(header)
  if (!claims) {
    sendError(res, ctx.state.quirks, 401, {
      detail: header
        ? 'account management authentication token is invalid or expired'
        : 'an account management authentication token is required',
    })
    return undefined
  }
  return claims
}

export interface Page {
  limit: number
  offset: number
}

/** `page[limit]` (1–100) and `page[offset]` (≥ 0), per guides/Getting-Started/pagination.md; 400 otherwise. */
export function readPage(ctx: SimContext, req: Req, res: Res, defaultLimit: number): Page | undefined {
  const rawLimit = req.query['page[limit]']
  const rawOffset = req.query['page[offset]']
  const limit = rawLimit === undefined ? defaultLimit : /^\d+$/.test(rawLimit) ? Number(rawLimit) : Number.NaN
  const offset = rawOffset === undefined ? 0 : /^\d+$/.test(rawOffset) ? Number(rawOffset) : Number.NaN
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    sendError(res, ctx.state.quirks, 400, {
      detail: 'page[limit] must be an integer between 1 and 100',
      source: 'page[limit]',
    })
    return undefined
  }
  if (!Number.isInteger(offset) || offset < 0) {
    sendError(res, ctx.state.quirks, 400, {
      detail: 'page[offset] must be a non-negative integer',
      source: 'page[offset]',
    })
    return undefined
  }
  return { limit, offset }
}

/** `meta` and `links` of a list response; `base` is the absolute URL of the list without a query. */
export function pageMeta(ctx: SimContext, base: string, page: Page, total: number) {
  const { limit, offset } = page
  const pages = Math.ceil(total / limit)
  const at = (o: number) => `${base}?page[offset]=${o}&page[limit]=${limit}`
  const none = ctx.state.quirks.nextAsStringNull ? 'null' : null
  return {
    meta: {
      page: { limit, offset, current: Math.floor(offset / limit) + 1, total: pages },
      results: { total },
    },
    links: {
      current: at(offset),
      first: at(0),
      last: at(Math.max(0, (pages - 1) * limit)),
      next: offset + limit < total ? at(offset + limit) : none,
      prev: offset > 0 ? at(Math.max(0, offset - limit)) : none,
    },
  }
}
