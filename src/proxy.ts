import type { IncomingHttpHeaders } from 'node:http'

/** Paths that would hand a token to the browser are never forwarded, whatever the prefixes say (contract §6). */
const NEVER_FORWARDED = ['/oauth', '/v2/account-members/tokens']

// Anything that is not an RFC 3986 pchar or a percent escape (raw spaces, quotes, backslashes, controls),
// and `;`: a matrix parameter that a server or CDN on the way may read as the end of the path.
const UNSAFE_SEGMENT = /[^A-Za-z0-9\-._~!$&'()*+,=:@%]/

/**
 * The EPCC path for a proxied request, or undefined when it must not be forwarded (contract §6 "Proxy").
 * `rawPath` is what follows `/api/epcc`, without the query. Each segment is percent-decoded for the checks:
 * an encoded `/`, `\`, `;`, `%`, `?` or `#` inside a segment (a server that decodes before it splits off the
 * query or fragment would read it otherwise),
 * an empty segment (`//host`), a raw unsafe character (`;`, `\`, …), or a dot segment climbing above the
 * root refuses the path; dot segments (also encoded, `%2e%2e`) are resolved; then a prefix must match whole
 * segments, case-sensitively, and no letter-case variant of a token endpoint passes. The forwarded path keeps each segment's
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
    if (/[/\\;%?#\u0000-\u001f\u007f]/.test(decoded)) return undefined
    // A server behind EPCC that folds Unicode (NFKC) after this check would read a full-width `．．` as `..`,
    // `？` as the start of a query: a segment in which folding makes any of these characters is refused too.
    if (/[^\x20-\x7e]/.test(decoded)) {
      const folded = decoded.normalize('NFKC')
      if (/[/\\;%?#]/.test(folded) || dots(folded) !== dots(decoded)) return undefined
    }
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
  // EPCC, or a router or gateway on the way, may match paths without regard to case, fold Unicode look-alikes
  // (`ſ` for `s`, full-width letters), or trim what follows a name (`tokens.json`, `tokens%20`, a zero-width
  // space): each segment is compared by the letters, digits, `-` and `_` it starts with, after NFKC folding
  // and lower-casing, so that none of those reaches a token endpoint.
  const lowerPath = `/${decodedOut.map(comparableSegment).join('/')}`
  const underRefused = (prefix: string) => lowerPath === prefix || lowerPath.startsWith(`${prefix}/`)
  if (NEVER_FORWARDED.some(underRefused) || !prefixes.some(underPrefix)) return undefined
  return `/${out.join('/')}`
}

const dots = (text: string) => text.split('.').length - 1

// What a URL parser percent-encodes in a query (the WHATWG special-query percent-encode set). The request's
// own parser let them through; EPCC gets them encoded.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among what is encoded
const QUERY_TO_ENCODE = /[\u0000-\u0020"#<>'\u007f-\uffff]/

/**
 * The request target at EPCC: its base path, the checked `path` (see `upstreamPath`) and the query as the
 * browser sent it, percent-encoded where a URL parser would encode it. No URL object for the usual query.
 */
export function upstreamTarget(basePath: string, path: string, query: string | undefined): string {
  if (!query) return `${basePath}${path}`
  if (!QUERY_TO_ENCODE.test(query)) return `${basePath}${path}?${query}`
  return `${basePath}${path}${new URL(`?${query}`, 'http://epcc.invalid').search}`
}

function comparableSegment(segment: string): string {
  // NFKC leaves printable ASCII as it is: only a segment with other characters needs folding.
  const folded = /^[\x20-\x7e]*$/.test(segment) ? segment : segment.normalize('NFKC')
  return /^[a-z0-9_-]*/.exec(folded.toLowerCase())?.[0] ?? ''
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

/** The header names a `Connection` header lists: hop-by-hop for this connection only (RFC 9110 §7.6.1). */
function connectionOptions(value: string | string[]): Set<string> {
  return new Set(
    [value]
      .flat()
      .join(',')
      .split(',')
      .map((h) => h.trim().toLowerCase()),
  )
}

const METHOD_OVERRIDES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])

/**
 * Headers some servers and gateways read as the request's real path or host (IIS and Symfony's
 * `X-Original-URL`/`X-Rewrite-URL`, a few proxies' `X-Host`): honoured anywhere behind EPCC's edge, they would
 * take a request the proxy judged by its path to another path, a token endpoint among them.
 */
const TARGET_OVERRIDES = new Set([
  'x-original-url',
  'x-rewrite-url',
  'x-override-url',
  'x-original-uri',
  'x-host',
  'x-original-host',
])

/** The browser's credentials: dropped, and replaced by the BFF's own (contract §3.2). */
export const BROWSER_CREDENTIALS = [
  'Cookie',
  'Authorization',
  'EP-Account-Management-Authentication-Token',
  'X-Moltin-Customer-Token',
] as const

/**
 * EPCC headers that select what EPCC answers (channel, catalogue, prices, currency, language, inventory):
 * forwarded unchanged. Any other `EP-*` or `X-Moltin-*` header is forwarded too, unless its name says it
 * carries a credential or picks another store (see `carriesCredential`).
 */
export const SELECTOR_HEADERS = [
  'EP-Channel',
  'EP-Context-Tag',
  'EP-Geolocation',
  'EP-Pricebook-IDs-For-Price-Segmentation-Preview',
  'EP-Pricebook-IDs-Of-Available-Prices-To-Show',
  'EP-Inventories-Multi-Location',
  'X-Moltin-Currency',
  'X-Moltin-Language',
  'Accept-Language',
  'If-None-Match',
  'If-Match',
] as const

/** What the official EPCC SDKs add to their requests besides the above (their version and language). */
const SDK_HEADERS = [
  'X-Moltin-SDK-Language',
  'X-Moltin-SDK-Version',
  'X-Moltin-Application',
  'X-Moltin-Auth-Store',
] as const

/**
 * The request headers a cross-origin storefront may send (the CORS preflight's allow list): ours, the
 * selectors, and what the official SDKs send — their credentials too, which the proxy drops.
 */
export const STOREFRONT_REQUEST_HEADERS: readonly string[] = [
  'Content-Type',
  'X-CSRF',
  ...BROWSER_CREDENTIALS.filter((h) => h !== 'Cookie'),
  ...SELECTOR_HEADERS,
  ...SDK_HEADERS,
]

const CREDENTIALS = new Set(BROWSER_CREDENTIALS.map((h) => h.toLowerCase()))

/**
 * An EPCC header whose name says it carries a credential (`*-Token`, `*-Auth*`, `*-Secret`, `*-Key`) or
 * picks the store (`X-Moltin-Auth-Store`): never the browser's to choose, whatever EPCC adds later.
 */
function carriesCredential(name: string): boolean {
  return /token|auth|secret|key|password/.test(name)
}

/**
 * The browser's headers that may reach EPCC: no credentials of the browser's own (`Cookie`, `Authorization`,
 * the account and customer token headers), no hop-by-hop or forwarding headers, no `Expect` (undici refuses
 * `100-continue`; the body is read whole before anything is sent), no CSRF or fetch metadata. The EPCC
 * headers that select what EPCC answers (`EP-Channel`, `X-Moltin-Currency`, …) pass unchanged.
 */
export function forwardedRequestHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const connectionListed = connectionOptions(incoming.connection ?? '')
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue
    const epcc = name.startsWith('ep-') || name.startsWith('x-moltin-')
    if (
      HOP_BY_HOP.has(name) ||
      connectionListed.has(name) ||
      CREDENTIALS.has(name) ||
      (epcc && carriesCredential(name)) ||
      name === 'host' ||
      name === 'expect' ||
      name === 'x-csrf' ||
      name === 'origin' ||
      name === 'referer' ||
      name.startsWith('sec-') ||
      name.startsWith('x-forwarded-') ||
      name === 'forwarded' ||
      name === 'x-real-ip' ||
      // A method or target override would let a request that the proxy judged by its method and path act
      // as another method, or on another path, at EPCC.
      METHOD_OVERRIDES.has(name) ||
      TARGET_OVERRIDES.has(name)
    ) {
      continue
    }
    out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

/**
 * Response headers that act on the whole origin the BFF serves, not on one answer: its stored state
 * (`Clear-Site-Data` would sign the browser out), the hosts the browser reaches it through (`Alt-Svc`), its
 * policies (HSTS, a report-only CSP, `Permissions-Policy`), and where the browser reports on it: `NEL` with
 * `Report-To` is a policy for the whole origin, kept for `max_age`, under which the browser sends the URL of
 * every request to the origin (a `success_fraction` of 1), `/oauth2/callback?code=…` among them, to the
 * collector the header names. Only the BFF sets these, never EPCC.
 */
const ORIGIN_WIDE = new Set([
  'clear-site-data',
  'alt-svc',
  'strict-transport-security',
  'content-security-policy-report-only',
  'permissions-policy',
  'set-cookie2',
  'nel',
  'report-to',
  'reporting-endpoints',
])

/**
 * EPCC's response headers that go back to the browser: all but `Set-Cookie`, hop-by-hop ones (and those its
 * `Connection` header lists, RFC 9110 §7.6.1), EPCC's own
 * `Access-Control-*` (the BFF's CORS policy decides what the browser may read, never EPCC's), headers that
 * act on the BFF's whole origin (`ORIGIN_WIDE`), and those in `own` — the security headers the BFF sets on
 * every answer (CSP, `nosniff`, `X-Frame-Options`, …), which EPCC's must not replace or relax.
 */
export function returnedResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  own: ReadonlySet<string> = new Set(),
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const listed = upstream.connection ?? upstream.Connection
  // Nearly always `keep-alive` or `close`, both hop-by-hop already: no set to build per answer.
  const connectionListed =
    listed === undefined || listed === 'keep-alive' || listed === 'close'
      ? undefined
      : connectionOptions(listed)
  for (const [name, value] of Object.entries(upstream)) {
    const lower = name.toLowerCase()
    if (
      value === undefined ||
      lower === 'set-cookie' ||
      HOP_BY_HOP.has(lower) ||
      connectionListed?.has(lower) ||
      lower.startsWith('access-control-') ||
      ORIGIN_WIDE.has(lower) ||
      own.has(lower)
    )
      continue
    out[lower] = value
  }
  return out
}

/**
 * The headers of a proxied answer: EPCC's as `returnedResponseHeaders` lets them through (`own`: the BFF's
 * security headers). An answer to a member's token is theirs: `Cache-Control: private` (no shared cache keeps
 * it) and `Cookie` in `Vary` (the browser's cache keeps it for this session's cookie only, not for the next
 * member who signs in in this browser). `Vary` keeps the BFF's own (`bffVary`: `Origin`, set with the CORS
 * answer), with EPCC's names added.
 */
export function proxiedAnswerHeaders(
  upstream: Record<string, string | string[] | undefined>,
  opts: { own: ReadonlySet<string>; bffVary: string | number | string[] | undefined; forMember: boolean },
): Record<string, string | string[]> {
  const headers = returnedResponseHeaders(upstream, opts.own)
  if (opts.forMember) headers['cache-control'] = privateCacheControl(headers['cache-control'])
  const vary = mergedVary(opts.bffVary, headers.vary, opts.forMember ? 'Cookie' : undefined)
  if (vary) headers.vary = vary
  return headers
}

/**
 * The `Vary` of a proxied answer: the BFF's own (`Origin`, which its CORS answer depends on) and EPCC's, each
 * name once. EPCC's alone would replace the BFF's, and a cache in front of the BFF could hand an answer
 * allowed for one storefront origin to another.
 */
export function mergedVary(...values: Array<string | number | string[] | undefined>): string | undefined {
  const names = new Map<string, string>()
  for (const value of values.flat()) {
    if (value === undefined) continue
    for (const name of String(value).split(',')) {
      const trimmed = name.trim()
      if (trimmed === '*') return '*'
      if (trimmed && !names.has(trimmed.toLowerCase())) names.set(trimmed.toLowerCase(), trimmed)
    }
  }
  return names.size > 0 ? [...names.values()].join(', ') : undefined
}

/** Directives that let a shared cache keep an answer; the BFF's `private` replaces them. */
const SHARED_CACHE_DIRECTIVES = new Set(['public', 'private', 's-maxage', 'proxy-revalidate'])

/**
 * The `Cache-Control` of an answer EPCC gave to a member's token: `private`, with EPCC's other directives
 * (`max-age`, `no-cache`, `no-store`, …). EPCC saw the token in a header, where a shared cache knows that an
 * answer is someone's (RFC 9111 §3.5); in front of the BFF the request carries only a cookie, which no cache
 * keys by: an answer EPCC let be cached (`max-age`, `public`) would be kept by a CDN or a proxy cache in front
 * of the BFF and handed, at the same URL, to other browsers — a member's cart, addresses, account prices.
 */
export function privateCacheControl(upstream: string | string[] | undefined): string {
  const kept: string[] = []
  for (const directive of [upstream ?? []].flat().join(',').split(',')) {
    const trimmed = directive.trim()
    const name = trimmed.split('=')[0]?.trim().toLowerCase() ?? ''
    if (trimmed && !SHARED_CACHE_DIRECTIVES.has(name)) kept.push(trimmed)
  }
  return ['private', ...kept].join(', ')
}
