import swagger from '@fastify/swagger'
import fp from 'fastify-plugin'

/**
 * An OpenAPI 3.1 description generated from the route schemas themselves (served by `GET /openapi.json`), so
 * that it cannot drift from what the routes validate and answer.
 * @see https://github.com/fastify/fastify-swagger
 */
export default fp(
  async (app) => {
    const { config } = app
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'epcc-oidc-bff',
          version: '1',
          description:
            'Backend-for-Frontend for Elastic Path Commerce Cloud account members. Storefront API calls send the ' +
            'session cookie (`credentials: "include"`) and `X-CSRF: 1`; navigations (login, callback) send neither header.',
        },
        servers: [{ url: config.publicUrl.href }],
        tags: [
          { name: 'navigation', description: 'The browser goes there; no CSRF header' },
          { name: 'auth', description: 'Sign-in options and logout' },
          { name: 'session', description: 'The signed-in member and their accounts' },
          { name: 'proxy', description: 'EPCC calls with the right tokens attached' },
          { name: 'operations', description: 'Probes and metrics' },
        ],
        components: {
          securitySchemes: {
            sessionCookie: {
              type: 'apiKey',
              in: 'cookie',
              name: config.session.cookieName,
              description: 'The HttpOnly session cookie; the browser sends it, scripts never see it',
            },
            adminToken: {
              type: 'http',
              scheme: 'bearer',
              description: 'ADMIN_TOKEN, for the administration routes (served only when it is set)',
            },
            csrfHeader: {
              type: 'apiKey',
              in: 'header',
              name: 'X-CSRF',
              description: 'Must be exactly `1` on every API call',
            },
          },
        },
      },
      // Routes are described under the path of PUBLIC_URL, which `servers` already carries.
      transform: ({ schema, url }) => ({ schema, url: url.slice(config.basePath.length) || '/' }),
    })
  },
  { name: 'openapi', dependencies: ['config'] },
)
