/**
 * A small generator of hostile variants for redirect targets and proxy paths: encodings, separators, case,
 * whitespace and control characters, unicode look-alikes, userinfo, schemes. Deterministic (no randomness),
 * so a failure names the exact input.
 */
const HOSTS = [
  'evil.example',
  'EVIL.example',
  'evil.example.',
  'evil。example',
  'еvil.example',
  '127.0.0.1',
  '[::1]',
]
const SEPARATORS = [
  '/',
  '//',
  '\\',
  '\\\\',
  '/\\',
  '\\/',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '%2f%2f',
  '/%2f',
  '%252f',
  '／',
  '⁄',
]
const PREFIXES = ['', ' ', '\t', '\n', '\r', '\u0000', '%09', '%0a', '%0d', '%20', '\u200b', '\ufeff']
const SCHEMES = [
  'https:',
  'http:',
  'HTTPS:',
  'javascript:',
  'JaVaScRiPt:',
  'data:',
  'vbscript:',
  'file:',
  'ftp:',
  '',
]

export function returnToVariants(allowedHost: string): string[] {
  const out = new Set<string>()
  for (const host of HOSTS) {
    for (const sep of SEPARATORS) {
      for (const prefix of PREFIXES) out.add(`${prefix}${sep}${host}`)
      out.add(`/..${sep}${host}`)
      out.add(`/.${sep}${host}`)
      out.add(`/%2e%2e${sep}${host}`)
    }
    for (const scheme of SCHEMES) {
      out.add(`${scheme}//${host}`)
      out.add(`${scheme}${host}`)
      out.add(`${scheme}//${allowedHost}@${host}`)
      out.add(`${scheme}//${allowedHost}.${host}`)
      out.add(`${scheme}//${host}/${allowedHost}`)
      out.add(`${scheme}//${host}#${allowedHost}`)
      out.add(`${scheme}//${host}?${allowedHost}`)
    }
    out.add(`https://${allowedHost}:443@${host}`)
    out.add(`https://${allowedHost}%40${host}`)
    out.add(`https://${host}\\@${allowedHost}`)
  }
  out.add('javascript:alert(1)')
  out.add('data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==')
  out.add(`/${'a'.repeat(5000)}`)
  return [...out]
}

const TRAVERSALS = ['..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '..%00', '%252e%252e', '．．', '...']
const SLASHES = ['/', '%2f', '%2F', '\\', '%5c', '%5C', '//', '/./', '%252f']

/** Raw request paths after `/api/epcc` that must never reach EPCC or leave its host. */
export function proxyPathVariants(): string[] {
  const out = new Set<string>()
  const targets = ['v2/settings', 'oauth/access_token', 'v2/account-members/tokens', 'v2/customers', 'admin']
  for (const dots of TRAVERSALS) {
    for (const slash of SLASHES) {
      for (const target of targets) {
        out.add(`/v2/carts${slash}${dots}${slash}${dots}${slash}${target}`)
        out.add(`/${dots}${slash}${target}`)
      }
    }
  }
  for (const host of HOSTS) {
    out.add(`//${host}/v2/carts`)
    out.add(`/https://${host}/v2/carts`)
    out.add(`/http:%2f%2f${host}/v2/carts`)
    out.add(`/v2/carts@${host}`.replace('/v2/carts@', '/@'))
    out.add(`/%2f%2f${host}/v2/carts`)
    out.add(`/\\\\${host}/v2/carts`)
  }
  for (const lookalike of [
    '/v2/cartsX',
    '/v2/carts.json',
    '/V2/carts',
    '/v2/Carts',
    '/v2/carts%00',
    '/v2/catalogs',
    '/v2/carts%2fx',
  ]) {
    out.add(lookalike)
  }
  out.add('/oauth/access_token')
  out.add('/v2/account-members/tokens')
  out.add('/v2/account-members/%74okens')
  return [...out]
}
