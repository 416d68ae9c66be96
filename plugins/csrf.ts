import fp from 'fastify-plugin'
import { BffError } from '../src/errors.js'

const csrf = () =>
  new BffError(403, 'csrf', 'Cross-site request refused: send X-CSRF: 1 from an allowed origin.')

/**
 * CSRF defence for the storefront API (contract §3.2, security.md §0.4): the custom header `X-CSRF: 1`
 * (a cross-site form or `no-cors` fetch cannot set it without a preflight), a present `Origin` must be
 * allowed, and a `Sec-Fetch-Site: cross-site` request must come from an allowed origin.
 * Registered inside the API scope only: navigations (login, callback) carry no custom header.
 */
export default fp(
  async (app) => {
    const allowed = new Set([...app.config.allowedOrigins, app.config.publicUrl.origin])
    app.addHook('onRequest', (request, _reply, done) => {
      const origin = request.headers.origin
      const refused =
        request.headers['x-csrf'] !== '1' ||
        (origin !== undefined && !allowed.has(origin)) ||
        (request.headers['sec-fetch-site'] === 'cross-site' && origin === undefined)
      done(refused ? csrf() : undefined)
    })
  },
  { name: 'csrf', dependencies: ['config'] },
)
