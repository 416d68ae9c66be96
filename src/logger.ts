import type { LoggerOptions } from 'pino'

interface LoggedRequest {
  id?: unknown
  method?: string
  url?: string
  routeOptions?: { url?: string }
  ip?: string
}

/**
 * pino options for the server. Fastify's default request serializer logs the full URL, which on the
 * callback carries `code` and `state` (security.md §2.7): log the path only, and redact every header or
 * field that can hold a secret. Secrets are never interpolated into messages, where redaction cannot see them.
 */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["ep-account-management-authentication-token"]',
        'res.headers["set-cookie"]',
        '*.token',
        '*.access_token',
        '*.code',
        '*.code_verifier',
        '*.codeVerifier',
        '*.oauth_code_verifier',
        '*.oauth_authorization_code',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req(req: LoggedRequest) {
        return { id: req.id, method: req.method, path: req.url?.split('?', 1)[0], ip: req.ip }
      },
      res(res: { statusCode?: number }) {
        return { statusCode: res.statusCode }
      },
    },
  }
}
