import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Agent, type Dispatcher, errors as undiciErrors } from 'undici'
import { signedInMember, tokensGone } from '../plugins/session.js'
import { EpccError } from '../src/epcc/errors.js'
import { BffError } from '../src/errors.js'
import { SessionExpiredError } from '../src/member-sessions.js'
import { forwardedRequestHeaders, proxiedAnswerHeaders, upstreamPath, upstreamTarget } from '../src/proxy.js'

/** Request bodies the proxy forwards (cart items, addresses, checkout) are small; this bounds them. */
export const PROXY_BODY_LIMIT = 1024 * 1024
// RFC 9110 §9.2.2: only these may be sent twice.
const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE'])

const notFound = () => new BffError(404, 'not_found', 'No such route.')
const tooLarge = () => new BffError(413, 'payload_too_large', 'The request body is too large.')
const sessionExpired = () => new SessionExpiredError()
const upstream = (status: number, message: string) => new BffError(status, 'upstream_unavailable', message)

/**
 * `/api/epcc/*` (contract §3.2, §6 "Proxy"): forwards the storefront's EPCC calls on `PROXY_PATH_PREFIXES`
 * with the implicit token and, when signed in, the active account's token. Bodies go through as they came,
 * up to a size limit; redirects are passed back, never followed; `Set-Cookie` never comes back.
 */
const proxy: FastifyPluginAsync = async (app) => {
  const { epcc: cfg, proxy: proxyCfg } = app.config
  const base = new URL(cfg.baseUrl)
  const origin = base.origin
  const basePath = base.pathname.replace(/\/$/, '')
  const mount = `${app.config.basePath}/api/epcc`
  // The security headers every answer of the BFF carries (set as the request comes): EPCC's never replace them.
  const ownHeaders = new Set(Object.keys(app.securityHeaders))
  const dispatcher = new Agent({
    connect: { timeout: cfg.timeoutMs },
    headersTimeout: cfg.timeoutMs,
    bodyTimeout: cfg.timeoutMs,
  })
  app.addHook('onClose', async () => dispatcher.close())

  // Bodies are not parsed here: they go to EPCC byte for byte.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))

  const accountTokenFor = async (
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<string | undefined> => {
    const session = request.session
    // A cookie that names no live session is never forwarded anonymously: the storefront must know.
    if (
      session.state === 'ended' ||
      session.state === 'replaced' ||
      (session.state === 'live' && session.record.auth)
    ) {
      const auth = await signedInMember(request, reply, sessionExpired)
      return app.memberSessions.activeToken(auth).catch(async (err: unknown) => {
        if (err instanceof SessionExpiredError) await tokensGone(request, reply)
        throw err
      })
    }
    return undefined
  }

  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/api/epcc/*',
    bodyLimit: PROXY_BODY_LIMIT,
    config: { apiRateLimit: true },
    schema: {
      summary: 'An EPCC call with the right tokens attached',
      description:
        'Forwarded to EPCC_BASE_URL/<path> (query kept) with the implicit token and, when signed in, the active ' +
        "account's token; the storefront's selector headers (EP-Channel, X-Moltin-Currency, …) pass, its " +
        "credentials never. EPCC's status, headers (but Set-Cookie, Access-Control-*, the BFF's own security " +
        'headers and those that act on its whole origin, such as Clear-Site-Data) and body come back ' +
        "unchanged; an answer to a member's token is Cache-Control: private (EPCC's public and s-maxage dropped) " +
        "with Cookie added to Vary, and EPCC's Vary adds to the BFF's Vary: Origin. The BFF itself answers " +
        '404 not_found (path outside PROXY_PATH_PREFIXES), ' +
        '401 session_expired (cookie expired) or 401 session_replaced (retry once; no cookie change), 403 csrf, 413 ' +
        'payload_too_large, 429 rate_limited (with Retry-After), 502/504 upstream_unavailable.',
      tags: ['proxy'],
      security: [{ csrfHeader: [] }, { sessionCookie: [], csrfHeader: [] }],
    },
    handler: async (request, reply) => {
      const [rawPath = '', query] = splitQuery(request.url.slice(mount.length))
      const path = upstreamPath(rawPath, proxyCfg.pathPrefixes)
      if (!path) throw notFound()
      // Read whole before anything leaves: a body found too large halfway must not reach EPCC in part.
      if (Number(request.headers['content-length'] ?? 0) > PROXY_BODY_LIMIT) throw tooLarge()
      const body = request.body
        ? await readBody(request.body as NodeJS.ReadableStream, PROXY_BODY_LIMIT)
        : undefined
      const accountToken = await accountTokenFor(request, reply)

      const target = upstreamTarget(basePath, path, query)
      const headers = forwardedRequestHeaders(request.headers)
      if (accountToken) headers['ep-account-management-authentication-token'] = accountToken
      // One deadline for the whole call, from connect to the last body byte (a retry included): undici's own
      // timeouts apply per phase, and an upstream body that trickles in would otherwise never end.
      // A timer cleared as the answer ends, not AbortSignal.timeout: its weakly held timer and signal cost
      // the garbage collector more than the rest of the call (BENCHMARKS.md).
      const aborter = new AbortController()
      const timer = setTimeout(
        () => aborter.abort(new DOMException('The proxied call took too long.', 'TimeoutError')),
        cfg.timeoutMs,
      ).unref()
      reply.raw.once('close', () => clearTimeout(timer))
      const deadline = aborter.signal
      const send = (implicit: string) => {
        headers.authorization = `Bearer ${implicit}`
        return dispatcher.request({
          origin,
          path: target,
          method: request.method as Dispatcher.HttpMethod,
          headers,
          body,
          signal: deadline,
        })
      }

      let implicit = await app.epcc.implicitToken({ forStorefront: true }).catch(() => {
        throw upstream(502, 'Elastic Path did not answer; try again shortly.')
      })
      let response: Dispatcher.ResponseData
      const started = performance.now()
      const observe = (status: string) =>
        app.metrics.observeProxied(request.method, status, performance.now() - started)
      try {
        response = await send(implicit)
        // A 401 may be EPCC refusing the store token (revoked, rotated, expired early): a call that may be sent
        // twice is tried once more when the client has (or takes) another one. At most one new token per
        // refusal: a 401 on a token that just replaced a refused one is EPCC's answer to the request.
        if (
          response.statusCode === 401 &&
          app.epcc.proxiedCallRefused(implicit) &&
          IDEMPOTENT.has(request.method)
        ) {
          await response.body.dump()
          implicit = await app.epcc.implicitToken({ forStorefront: true })
          response = await send(implicit)
        }
      } catch (err) {
        observe('error')
        if (err instanceof EpccError) throw upstream(502, 'Elastic Path did not answer; try again shortly.')
        const timedOut =
          deadline.aborted ||
          err instanceof undiciErrors.HeadersTimeoutError ||
          err instanceof undiciErrors.ConnectTimeoutError ||
          err instanceof undiciErrors.BodyTimeoutError
        request.log.warn({ path, err: (err as Error).name }, 'proxied call failed')
        throw upstream(timedOut ? 504 : 502, 'Elastic Path did not answer; try again shortly.')
      }
      observe(String(response.statusCode))
      // EPCC's Cache-Control, or none: not the BFF's own no-store.
      reply.removeHeader('cache-control')
      const answerHeaders = proxiedAnswerHeaders(response.headers, {
        own: ownHeaders,
        bffVary: reply.getHeader('vary'),
        forMember: Boolean(accountToken),
      })
      return reply.code(response.statusCode).headers(answerHeaders).send(response.body)
    },
  })
}

function splitQuery(url: string): [string, string | undefined] {
  const i = url.indexOf('?')
  return i < 0 ? [url, undefined] : [url.slice(0, i), url.slice(i + 1)]
}

/** The request body, read whole; `413` once it exceeds `max` bytes. */
async function readBody(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
    size += buffer.length
    if (size > max) throw tooLarge()
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
}

export default proxy
