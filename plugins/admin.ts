import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import { BffError } from '../src/errors.js'

const unauthorized = () =>
  new BffError(401, 'unauthorized', 'Send Authorization: Bearer <ADMIN_TOKEN> to use the administration API.')

/** `Bearer <token>`'s token, or undefined. */
function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
  return match?.[1]
}

/**
 * The operators' door to the administration routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in
 * constant time (SHA-256 digests of equal length, so neither the token's content nor its length leaks
 * through timing). Checked after the rate limiter counts the request, so guessing is rate limited too.
 * Registered inside the administration scope only, and only when `ADMIN_TOKEN` is set.
 * @see https://nodejs.org/api/crypto.html#cryptotimingsafeequala-b
 */
export default fp(
  async (app) => {
    const { adminToken } = app.config
    if (!adminToken) throw new Error('the administration routes need ADMIN_TOKEN')
    const expected = createHash('sha256').update(adminToken).digest()
    app.addHook('preValidation', (request, _reply, done) => {
      const given = bearer(request.headers.authorization)
      const digest = createHash('sha256')
        .update(given ?? '')
        .digest()
      if (given !== undefined && timingSafeEqual(digest, expected)) return done()
      // An audit line per refusal (the rate limit bounds how many): who knocked, never what they sent.
      request.log.warn(
        { ip: request.ip, reason: given === undefined ? 'no bearer token' : 'wrong token' },
        'admin refused',
      )
      done(unauthorized())
    })
  },
  { name: 'admin', dependencies: ['config'] },
)
