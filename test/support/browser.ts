/**
 * A tiny cookie-keeping HTTP client that behaves like a browser where the tests need it: one jar per
 * host:port, redirects followed by hand, forms parsed and posted, and the cookie rules browsers enforce —
 * `Secure` cookies only from and to https origins, and a `__Host-` cookie (set or cleared) ignored unless it
 * is `Secure`, `Path=/` and without `Domain` (RFC 6265bis §4.1.3.2). Every `Set-Cookie` of the BFF's session
 * cookie is checked on arrival by one shared assertion (`assertSessionCookies`).
 */

interface StoredCookie {
  value: string
  expiresAt?: number
  secure: boolean
}

/** Origins (host:port) served over https by a TLS-terminating front: requested over plain http on loopback. */
const tlsTerminated = new Set<string>()

/** Browsers treat `hostPort` as an https origin, reached on the wire through a TLS-terminating front. */
export function terminateTlsFor(hostPort: string): void {
  tlsTerminated.add(hostPort)
}

const SESSION_COOKIE = /^(__Host-)?epcc-bff$/

/**
 * The one assertion over every `Set-Cookie` of the session cookie, in every deployment: at most one per name
 * in a response, each with `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, and `Secure` exactly when the
 * origin is https. Throws, so that no test can pass over a wrong cookie.
 */
export function assertSessionCookies(lines: string[], secureOrigin: boolean): void {
  const seen = new Set<string>()
  for (const line of lines) {
    const [pair = '', ...parts] = line.split(';')
    const name = pair.slice(0, pair.indexOf('=')).trim()
    if (!SESSION_COOKIE.test(name)) continue
    const where = `Set-Cookie ${name}=…;${parts.join(';')}`
    if (seen.has(name)) throw new Error(`two Set-Cookie lines for ${name} in one response: ${where}`)
    seen.add(name)
    const attrs = new Map(
      parts.map((p) => {
        const [k = '', ...v] = p.split('=')
        return [k.trim().toLowerCase(), v.join('=').trim()] as const
      }),
    )
    const problems = [
      !attrs.has('httponly') && 'no HttpOnly',
      attrs.get('samesite')?.toLowerCase() !== 'lax' && 'not SameSite=Lax',
      attrs.get('path') !== '/' && 'not Path=/',
      attrs.has('domain') && 'a Domain',
      attrs.has('secure') !== secureOrigin && (secureOrigin ? 'no Secure over https' : 'Secure over http'),
      name.startsWith('__Host-') !== secureOrigin && 'the wrong name for the origin',
    ].filter(Boolean)
    if (problems.length > 0) throw new Error(`${where}: ${problems.join(', ')}`)
  }
}

export class Browser {
  private readonly jar = new Map<string, Map<string, StoredCookie>>()
  private readonly rawByName = new Map<string, string>()
  private readonly headers: Record<string, string>

  constructor(opts: { headers?: Record<string, string> } = {}) {
    this.headers = opts.headers ?? {}
  }

  /** One request, `redirect: 'manual'`, cookies sent from and stored into the jar. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url)
    const secure = target.protocol === 'https:'
    const wire = new URL(target)
    if (secure && tlsTerminated.has(target.host)) wire.protocol = 'http:'
    const headers = new Headers(this.headers)
    for (const [k, v] of new Headers(init.headers)) headers.set(k, v)
    const cookieHeader = this.cookieHeader(target.host, secure)
    if (cookieHeader && !headers.has('cookie')) headers.set('cookie', cookieHeader)
    const response = await fetch(wire, { ...init, headers, redirect: 'manual' })
    const lines = response.headers.getSetCookie()
    assertSessionCookies(lines, secure)
    for (const line of lines) this.store(target.host, line, secure)
    return response
  }

  /**
   * GETs `url` and follows 30x responses until a non-redirect answer, or until `stopAt` matches a
   * redirect target, which is then returned as `url` without being requested. `response` is the last
   * response received; `hops` are the URLs requested, in order.
   */
  async follow(
    url: string | URL,
    opts: { stopAt?: (u: URL) => boolean; max?: number } = {},
  ): Promise<{ url: URL; response: Response; hops: URL[] }> {
    const max = opts.max ?? 20
    const hops: URL[] = []
    let current = new URL(url)
    for (;;) {
      hops.push(current)
      const response = await this.fetch(current)
      const location = response.headers.get('location')
      if (response.status < 300 || response.status > 399 || !location) return { url: current, response, hops }
      await response.body?.cancel()
      const next = new URL(location, current)
      if (opts.stopAt?.(next)) return { url: next, response, hops }
      if (hops.length >= max) throw new Error(`more than ${max} redirects, last ${next.href}`)
      current = next
    }
  }

  /** Parses the first `<form>` in `html`, fills `fields` over its inputs and submits it (urlencoded). */
  async submitForm(pageUrl: URL, html: string, fields: Record<string, string>): Promise<Response> {
    const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html)
    if (!form) throw new Error(`no <form> on ${pageUrl.href}`)
    const attrs = parseAttributes(form[1] ?? '')
    const action = new URL(decodeEntities(attrs.action ?? ''), pageUrl)
    const method = (attrs.method ?? 'get').toUpperCase()
    const body = new URLSearchParams()
    for (const input of (form[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const a = parseAttributes(input[1] ?? '')
      const type = (a.type ?? 'text').toLowerCase()
      if (!a.name || type === 'submit' || type === 'button') continue
      if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue
      body.set(a.name, decodeEntities(a.value ?? ''))
    }
    for (const [k, v] of Object.entries(fields)) body.set(k, v)
    if (method === 'GET') {
      for (const [k, v] of body) action.searchParams.set(k, v)
      return this.fetch(action)
    }
    return this.fetch(action, {
      method,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    })
  }

  cookie(hostPort: string, name: string): string | undefined {
    const c = this.jar.get(hostPort)?.get(name)
    if (!c) return undefined
    if (c.expiresAt !== undefined && c.expiresAt <= Date.now()) return undefined
    return c.value
  }

  setCookie(hostPort: string, name: string, value: string): void {
    this.hostJar(hostPort).set(name, { value, secure: name.startsWith('__Host-') })
  }

  /** The raw `Set-Cookie` line last received for `name` (any host), for attribute assertions. */
  lastSetCookie(name: string): string | undefined {
    return this.rawByName.get(name)
  }

  private hostJar(hostPort: string): Map<string, StoredCookie> {
    let m = this.jar.get(hostPort)
    if (!m) {
      m = new Map()
      this.jar.set(hostPort, m)
    }
    return m
  }

  private cookieHeader(hostPort: string, secure: boolean): string {
    const now = Date.now()
    const pairs: string[] = []
    for (const [name, c] of this.jar.get(hostPort) ?? []) {
      if ((c.expiresAt === undefined || c.expiresAt > now) && (secure || !c.secure))
        pairs.push(`${name}=${c.value}`)
    }
    return pairs.join('; ')
  }

  private store(hostPort: string, line: string, secureOrigin: boolean): void {
    const [pair = '', ...attrParts] = line.split(';')
    const eq = pair.indexOf('=')
    if (eq < 1) return
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    this.rawByName.set(name, line)
    let expiresAt: number | undefined
    let secure = false
    let path: string | undefined
    let domain = false
    for (const part of attrParts) {
      const [k = '', ...rest] = part.split('=')
      const key = k.trim().toLowerCase()
      const v = rest.join('=').trim()
      if (key === 'secure') secure = true
      else if (key === 'path') path = v
      else if (key === 'domain') domain = true
    }
    // What browsers ignore: a Secure cookie from an http origin, a __Host- cookie that is not Secure, Path=/
    // and host-only, a __Secure- cookie that is not Secure — whether it sets or clears.
    if (secure && !secureOrigin) return
    if (name.startsWith('__Host-') && (!secure || path !== '/' || domain)) return
    if (name.startsWith('__Secure-') && !secure) return
    for (const part of attrParts) {
      const [k = '', ...rest] = part.split('=')
      const key = k.trim().toLowerCase()
      const v = rest.join('=').trim()
      if (key === 'max-age') {
        const s = Number(v)
        // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
        if (Number.isFinite(s)) {
          expiresAt = Date.now() + s * 1000
          break
        }
      } else if (key === 'expires') {
        const t = Date.parse(v)
        if (Number.isFinite(t)) expiresAt = t
      }
    }
    const jar = this.hostJar(hostPort)
    if (expiresAt !== undefined && expiresAt <= Date.now()) jar.delete(name)
    else jar.set(name, expiresAt === undefined ? { value, secure } : { value, expiresAt, secure })
  }
}

function parseAttributes(src: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of src.matchAll(/([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    const key = (m[1] ?? '').toLowerCase()
    out[key] = m[2] ?? m[3] ?? m[4] ?? ''
  }
  return out
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

/**
 * Drives a login through the EPCC simulator and the dev IdP: follows `authorizeUrl`, submits the login
 * form with `creds`, then follows on until `stopAt` (typically the BFF callback) and returns that URL
 * without requesting it. Throws when the IdP shows its form again (wrong credentials).
 */
export async function idpLogin(
  browser: Browser,
  authorizeUrl: string,
  creds: { email: string; password: string },
  stopAt: (u: URL) => boolean,
): Promise<URL> {
  const first = await browser.follow(authorizeUrl, { stopAt })
  if (first.hops.at(-1) !== first.url) return first.url
  const html = await first.response.text()
  if (first.response.status !== 200 || !/<form\b/i.test(html)) {
    throw new Error(
      `expected the IdP login form at ${first.url.href}, got ${first.response.status}: ${html.slice(0, 200)}`,
    )
  }
  const submitted = await browser.submitForm(first.url, html, {
    email: creds.email,
    password: creds.password,
  })
  const location = submitted.headers.get('location')
  if (submitted.status < 300 || submitted.status > 399 || !location) {
    const body = await submitted.text()
    throw new Error(`IdP login did not redirect (${submitted.status}): ${body.slice(0, 200)}`)
  }
  const next = new URL(location, first.url)
  if (stopAt(next)) return next
  const done = await browser.follow(next, { stopAt })
  if (done.hops.at(-1) === done.url) {
    throw new Error(`login ended at ${done.url.href} (${done.response.status}) before reaching stopAt`)
  }
  return done.url
}
