/** Values the bench's processes share. */

/** What the infra process reports once its servers listen. */
export interface InfraReady extends Record<string, unknown> {
  simApiUrl: string
  upstreamUrl: string
  idpIssuer: string
  clientId: string
  clientSecret: string
}

/** The express-openid-connect client registered at the dev IdP, and its one user. */
export const EXPRESS_CLIENT = { id: 'bench-express', secret: 'bench-express-client-secret-0123456789' }
export const EXPRESS_USER = { sub: 'bench-user-1', email: 'ada@example.com', password: 'bench-password' }

export const SESSION_SECRET = 'bench-session-secret-0123456789abcdefghij'
