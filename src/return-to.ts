/** Where a browser may be sent after login: contract §3.1 `returnTo` and §6 "Mounting". */
export interface ReturnToRules {
  /** The default landing page (FRONTEND_URL). */
  frontendUrl: string
  frontendOrigin: string
  allowedOrigins: ReadonlySet<string>
}

/** Longer targets land on FRONTEND_URL: a pending login stores its target, and this bounds its size. */
export const RETURN_TO_MAX_LENGTH = 1024
// Control characters and backslashes: browsers strip or reinterpret them (`/\evil`, `/%09/evil`).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f\\]/

/**
 * Resolves `returnTo` to an absolute URL on an allowed origin, or to FRONTEND_URL. A path is resolved
 * against FRONTEND_URL's origin and re-emitted absolute, so `/..//evil.example` becomes
 * `https://shop//evil.example`, never a protocol-relative `//evil.example` (security.md A-6).
 */
export function resolveReturnTo(value: string | undefined, rules: ReturnToRules): string {
  if (value === undefined || value === '' || value.length > RETURN_TO_MAX_LENGTH || UNSAFE.test(value)) {
    return rules.frontendUrl
  }
  let url: URL
  if (value.startsWith('/') && !value.startsWith('//')) {
    url = new URL(value, rules.frontendOrigin)
  } else {
    try {
      url = new URL(value)
    } catch {
      return rules.frontendUrl
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return rules.frontendUrl
    if (url.username !== '' || url.password !== '') return rules.frontendUrl
  }
  if (!rules.allowedOrigins.has(url.origin)) return rules.frontendUrl
  return url.href
}
