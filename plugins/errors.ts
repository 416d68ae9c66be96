import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { BffError } from '../src/errors.js'
import { StoreUnavailableError } from '../src/session/kv.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The browser navigates here (login, callback): failures land on the storefront's error page. */
    navigation?: boolean
  }
}

const CLIENT_ERRORS: Record<number, [string, string]> = {
  404: ['not_found', 'No such route.'],
  405: ['method_not_allowed', 'Method not allowed.'],
  413: ['payload_too_large', 'The request body is too large.'],
  415: ['unsupported_media_type', 'Send JSON (Content-Type: application/json).'],
}

/**
 * One place that turns errors into the contract's `{"error","message"}` bodies. Unexpected errors are logged
 * and answered with a fixed 500 text: no stack trace or internal message reaches the browser.
 * Every error answer is `Cache-Control: no-store` (contract §3), a proxied call's too; every other answer of
 * the BFF's own gets it with the security headers (plugins/security-headers.ts).
 */
export default fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      reply.header('cache-control', 'no-store')
      // A body refused part-way is not read further: the connection cannot carry another request.
      if (err.statusCode === 413) reply.header('connection', 'close')
      if (err instanceof BffError) {
        return reply.code(err.statusCode).send({ error: err.code, message: err.message })
      }
      if (err instanceof StoreUnavailableError) {
        request.server.metrics.storeErrors.inc()
        // Logged once per outage (as it starts and as it ends, with a count), not once per request.
        request.server.storeOutage.refusedRequest(err.cause instanceof Error ? err.cause.message : 'unknown')
        // A browser navigation (login, callback) lands on the storefront's error page, not on a JSON body.
        if (request.routeOptions.config?.navigation) {
          return reply.redirect(`${request.server.config.loginErrorUrl}?error=upstream_unavailable`, 302)
        }
        return reply.code(503).header('retry-after', '1').send({
          error: 'session_store_unavailable',
          message: 'The session store is unavailable; try again shortly.',
        })
      }
      const status = err.statusCode ?? 500
      if (status === 503) {
        // @fastify/under-pressure shedding load; it has set Retry-After.
        request.log.warn('shedding load')
        return reply
          .code(503)
          .send({ error: 'overloaded', message: 'The server is overloaded; retry shortly.' })
      }
      if (err.validation || (status >= 400 && status < 500)) {
        const [code, message] = CLIENT_ERRORS[status] ?? ['bad_request', 'The request is malformed.']
        const detail = err.validation ? `${message} ${err.message}` : message
        return reply.code(err.validation ? 400 : status).send({ error: code, message: detail })
      }
      // Logged as its type, message and stack only (src/logger.ts): never its properties or `cause` chain.
      request.log.error({ err }, 'unexpected error')
      return reply.code(500).send({ error: 'internal_error', message: 'Something went wrong on our side.' })
    })

    app.setNotFoundHandler((request, reply) => {
      request.server.metrics.observeRequest(undefined, request.method, 404, reply.elapsedTime)
      reply.code(404).send({ error: 'not_found', message: 'No such route.' })
    })
  },
  { name: 'errors' },
)
