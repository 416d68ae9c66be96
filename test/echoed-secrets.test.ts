/**
 * EPCC, or a gateway in front of it, may echo what it was sent in an error title: a code, a verifier, a bearer
 * token, a client secret. None of it may reach a log line, a message or `/readyz`. "EPCC" here is the simulator
 * behind a man-in-the-middle that answers chosen calls with such titles (test/support/epcc-mitm.ts), in each
 * deployment (http, https behind a TLS proxy, two replicas on Redis).
 */
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { Browser } from './support/browser.js'
import { epccError, leaks, mitmStack, type Seen, secretsIn } from './support/epcc-mitm.js'
import { login } from './support/flows.js'
import { inEachDeployment } from './support/stack.js'

t.test('token exchange rejected with a title echoing the code and verifier', async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const { stack, rules, seen, logs } = await mitmStack(t, { deployment })
    rules.push((req, res) => {
      if (req.method !== 'POST' || !req.url.startsWith('/v2/account-members/tokens')) return false
      const data = (JSON.parse(req.body) as { data: Record<string, string> }).data
      if (data.authentication_mechanism !== 'oidc') return false
      return epccError(
        res,
        400,
        `code ${data.oauth_authorization_code} with verifier ${data.oauth_code_verifier} is invalid`,
      )
    })
    const member = stack.sim.addMember({ name: 'A', email: 'a@example.com', accounts: 1 })
    const result = await login(stack, new Browser(), member.id)
    t.match(result.location, /error=login_failed/)
    const found = leaks(logs.lines, secretsIn(seen))
    t.same(found, [], 'no code / verifier / token in any log line')
  }),
)

t.test('member read refused with a title echoing the account token', async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const { stack, rules, seen, logs } = await mitmStack(t, { deployment })
    rules.push((req, res) => {
      if (req.method !== 'GET' || !/^\/v2\/account-members\/[^/?]+$/.test(req.url)) return false
      const token = String(
        req.headers['ep-account-management-authentication-token'] ?? req.headers.authorization,
      )
      return epccError(res, 403, `token ${token} may not read this member`)
    })
    const member = stack.sim.addMember({ name: 'B', email: 'b@example.com', accounts: 1 })
    const result = await login(stack, new Browser(), member.id)
    t.match(result.location, /error=/)
    const found = leaks(logs.lines, secretsIn(seen))
    t.same(found, [], 'no account token in any log line')
  }),
)

t.test('realm read refused with a title echoing the implicit token / client secret', async (t) =>
  inEachDeployment(t, async (t, deployment) => {
    const rules = [
      (req: Seen, res: ServerResponse) => {
        if (req.method !== 'GET' || !req.url.startsWith('/v2/authentication-realms')) return false
        return epccError(res, 403, `bearer ${String(req.headers.authorization)} is not allowed here`)
      },
      (req: Seen, res: ServerResponse) => {
        if (req.method !== 'POST' || !req.url.startsWith('/oauth/access_token')) return false
        const form = new URLSearchParams(req.body)
        if (form.get('grant_type') !== 'client_credentials') return false
        return epccError(
          res,
          401,
          `client ${form.get('client_id')} secret ${form.get('client_secret')} unknown`,
        )
      },
    ]
    const { stack, seen, logs } = await mitmStack(t, { deployment, rules })
    const res = await new Browser().fetch(`${stack.bff}/auth/login`)
    await res.body?.cancel()
    await new Promise((r) => setTimeout(r, 200))
    const found = leaks(logs.lines, secretsIn(seen, [stack.sim.clientSecret]))
    t.same(found, [], 'no implicit token / client secret in any log line')
  }),
)

t.test(
  '/readyz never serves EPCC error text: a title echoing the client-credentials token stays out',
  async (t) =>
    inEachDeployment(t, async (t, deployment) => {
      const rules = [
        (req: Seen, res: ServerResponse) => {
          if (req.method !== 'GET' || !req.url.startsWith('/v2/settings/account-authentication')) return false
          return epccError(
            res,
            403,
            `token ${String(req.headers.authorization).slice(7)} may not read settings`,
          )
        },
      ]
      const { stack, seen } = await mitmStack(t, { deployment, rules })
      const res = await new Browser().fetch(`${stack.bff}/readyz`)
      const body = await res.text()
      const exposed = secretsIn(seen).filter((s) => body.includes(s))
      t.same(exposed, [], 'no token in the /readyz body')
    }),
)
