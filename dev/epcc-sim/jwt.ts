/** HS256 JSON Web Tokens with node:crypto, shaped like EPCC account tokens (epcc-api.md §1.8). */
import { createHmac, timingSafeEqual } from 'node:crypto'

export interface AccountTokenClaims {
  sub: string
  scope: string
  realm_id: string
  store_id: string
  iat: number
  exp: number
  account_member_self_management: string
  ancestors: string
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url')
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))

export function signHs256(claims: object, secret: Buffer): string {
  const body = `${HEADER}.${b64url(JSON.stringify(claims))}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}

/** The payload when the signature is ours and the header says HS256; expiry is the caller's business. */
export function verifyHs256(token: string, secret: Buffer): Record<string, unknown> | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  const [header = '', payload = '', signature = ''] = parts
  const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest()
  const given = Buffer.from(signature, 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  try {
    const h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown }
    if (h.alg !== 'HS256') return undefined
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    return claims !== null && typeof claims === 'object' ? (claims as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

export function isAccountTokenClaims(
  c: Record<string, unknown>,
): c is Record<string, unknown> & AccountTokenClaims {
  return (
    typeof c.sub === 'string' &&
    typeof c.scope === 'string' &&
    typeof c.realm_id === 'string' &&
    typeof c.store_id === 'string' &&
    typeof c.iat === 'number' &&
    typeof c.exp === 'number'
  )
}
