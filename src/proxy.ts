import type { IncomingHttpHeaders } from 'node:http'

/** Paths that would hand a token to the browser are never forwarded, whatever the prefixes say (contract §6). */
const NEVER_FORWARDED = ['/oauth', '/v2/account-members/tokens']

// Anything that is not an RFC 3986 pchar or a percent escape: raw spaces, quotes, backslashes, controls.
const UNSAFE_SEGMENT = /[^A-Za-z0-9\-._~!$&'()*+,;=:@%]/

/**
 * The EPCC path for a proxied request, or undefined when it must not be forwarded (contract §6 "Proxy").
 * `rawPath` is what follows `/api/epcc`, without the query. Each segment is percent-decoded for the checks:
 * an encoded `/` or `\` inside a segment, an empty segment (`//host`), a raw unsafe character, or a dot
 * segment climbing above the root refuses the path; dot segments (also encoded, `%2e%2e`) are resolved;
 * then a prefix must match whole segments, case-sensitively. The forwarded path keeps each segment's
 * original encoding, so EPCC sees exactly what was checked.
 */
export function upstreamPath(rawPath: string, prefixes: readonly string[]): string | undefined {
  if (!rawPath.startsWith('/') || rawPath.length > 2048) return undefined
  const out: string[] = []
  const decodedOut: string[] = []
  const segments = rawPath.slice(1).split('/')
  for (const [i, segment] of segments.entries()) {
    if (segment === '' && i === segments.length - 1 && i > 0) continue // a trailing slash
    if (segment === '' || UNSAFE_SEGMENT.test(segment)) return undefined
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      return undefined
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
    if (/[/\\\u0000-\u001f\u007f]/.test(decoded)) return undefined
    if (decoded === '.') continue
    if (decoded === '..') {
      if (out.length === 0) return undefined
      out.pop()
      decodedOut.pop()
      continue
    }
    out.push(segment)
    decodedOut.push(decoded)
  }
  const decodedPath = `/${decodedOut.join('/')}`
  const underPrefix = (prefix: string) => decodedPath === prefix || decodedPath.startsWith(`${prefix}/`)
  if (NEVER_FORWARDED.some(underPrefix) || !prefixes.some(underPrefix)) return undefined
  return `/${out.join('/')}`
}

// RFC 9110 §7.6.1 hop-by-hop headers, and what a proxy must not pass on either way.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/**
 * The browser's headers that may reach EPCC: no credentials of the browser's own (`Cookie`,
 * `Authorization`, `EP-*`, `X-Moltin-*`), no hop-by-hop or forwarding headers, no CSRF or fetch metadata.
 */
export function forwardedRequestHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const connectionListed = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  )
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue
    if (
      HOP_BY_HOP.has(name) ||
      connectionListed.has(name) ||
      name === 'host' ||
      name === 'cookie' ||
      name === 'authorization' ||
      name.startsWith('ep-') ||
      name.startsWith('x-moltin-') ||
      name === 'x-csrf' ||
      name === 'origin' ||
      name === 'referer' ||
      name.startsWith('sec-') ||
      name.startsWith('x-forwarded-') ||
      name === 'forwarded' ||
      name === 'x-real-ip'
    ) {
      continue
    }
    out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

/** EPCC's response headers that go back to the browser: all but `Set-Cookie` and hop-by-hop ones. */
export function returnedResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(upstream)) {
    const lower = name.toLowerCase()
    if (value === undefined || lower === 'set-cookie' || HOP_BY_HOP.has(lower)) continue
    out[lower] = value
  }
  return out
}
