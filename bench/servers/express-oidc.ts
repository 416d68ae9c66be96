/**
 * Baseline: express-openid-connect with its defaults (an encrypted cookie session, re-encrypted on every
 * response), logged in for real against the dev OpenID Provider; `GET /session` returns `req.oidc.user`.
 * @see https://github.com/auth0/express-openid-connect
 */
import express from 'express'
import { auth } from 'express-openid-connect'
import { EXPRESS_CLIENT } from '../lib/fixtures.js'

const port = Number(process.env.PORT)
const app = express()
app.use(
  auth({
    issuerBaseURL: process.env.BENCH_IDP_ISSUER ?? '',
    baseURL: `http://127.0.0.1:${port}`,
    clientID: EXPRESS_CLIENT.id,
    clientSecret: EXPRESS_CLIENT.secret,
    secret: 'bench-express-cookie-secret-0123456789abcdef',
    authRequired: false,
    idpLogout: false,
    authorizationParams: { response_type: 'code', scope: 'openid email' },
  }),
)
app.get('/session', (req, res) => {
  if (!req.oidc.isAuthenticated()) {
    res.status(401).json({ error: 'unauthenticated' })
    return
  }
  res.json(req.oidc.user)
})
const server = app.listen(port, '127.0.0.1')
process.on('SIGTERM', () => server.close(() => process.exit(0)))
