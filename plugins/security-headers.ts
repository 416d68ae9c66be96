import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Security headers on every response (security.md A-43), and `Cache-Control: no-store` on the BFF's own: `nosniff`, a CSP that forbids framing and
 * everything else (the BFF serves no HTML), `Referrer-Policy: no-referrer` (the callback URL carries a code),
 * HSTS when PUBLIC_URL is https, and the rest of helmet's defaults.
 *
 * helmet decides the headers; they are the same on every response (no per-route options, no CSP nonces), so
 * they are taken from it once at start and set as one fixed set per reply, instead of running helmet's
 * middleware chain on every request as @fastify/helmet does (9 % of a `GET /session`, BENCHMARKS.md).
 * @see https://helmetjs.github.io/
 */
declare module 'fastify' {
  interface FastifyInstance {
    /** The fixed set of security headers every response carries. */
    securityHeaders: Record<string, string>
  }
}

export default fp(
  async (app) => {
    const headers = helmetHeaders({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
        },
      },
      referrerPolicy: { policy: 'no-referrer' },
      xFrameOptions: { action: 'deny' }, // as frame-ancestors 'none', for browsers without CSP
      strictTransportSecurity: app.config.session.secure
        ? { maxAge: 31_536_000, includeSubDomains: true }
        : false,
      // The storefront calls us with CORS from its own origin: keep cross-origin reads possible.
      crossOriginResourcePolicy: { policy: 'same-site' },
    })
    app.decorate('securityHeaders', headers)
    // The BFF's own answers are never cached (contract §3). Set as the request comes, with the rest: a route
    // that means another Cache-Control sets its own (a proxied answer takes EPCC's, routes/proxy.ts).
    const withNoStore = Object.freeze({ ...headers, 'cache-control': 'no-store' })
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(withNoStore)
      done()
    })
  },
  { name: 'security-headers', dependencies: ['config'] },
)

/** The headers helmet sets with `options`, read off one run of its middleware. */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = String(value)
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()]
    },
  }
  let failure: unknown
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (err) => {
    failure = err
  })
  if (failure) throw failure
  if (!headers['x-content-type-options']) throw new Error('helmet set no headers synchronously')
  return Object.freeze(headers)
}
