import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

/**
 * Security headers on every response (security.md A-43): `nosniff`, a CSP that forbids framing and
 * everything else (the BFF serves no HTML), `Referrer-Policy: no-referrer` (the callback URL carries a code),
 * and HSTS when PUBLIC_URL is https.
 * @see https://github.com/fastify/fastify-helmet
 */
export default fp(
  async (app) => {
    await app.register(helmet, {
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
      hsts: app.config.session.secure ? { maxAge: 31_536_000, includeSubDomains: true } : false,
      // The storefront calls us with CORS from its own origin: keep cross-origin reads possible.
      crossOriginResourcePolicy: { policy: 'same-site' },
    })
  },
  { name: 'security-headers', dependencies: ['config'] },
)
