import { Browser } from './browser.js'
import { API, type Stack } from './stack.js'

export interface LoginResult {
  /** The callback URL EPCC sent the browser to. */
  callbackUrl: URL
  /** The BFF's answer to the callback. */
  response: Response
  location: string
}

/** Starts a login in `browser` and returns the callback URL EPCC redirects to (direct mode: no IdP form). */
export async function startLogin(stack: Stack, browser: Browser, query = ''): Promise<URL> {
  const start = await browser.fetch(`${stack.bff}/auth/login${query}`)
  const authorize = start.headers.get('location')
  if (start.status !== 302 || !authorize) throw new Error(`login did not start: ${start.status}`)
  const isCallback = (u: URL) => u.href.startsWith(`${stack.publicUrl}/oauth2/callback`)
  const { url } = await browser.follow(authorize, { stopAt: isCallback })
  if (!isCallback(url)) throw new Error(`EPCC did not redirect to the callback: ${url.href}`)
  return url
}

/** A complete login of `memberId` in `browser` (direct mode), ending with the BFF's callback answer. */
export async function login(
  stack: Stack,
  browser: Browser,
  memberId: string,
  query = '',
): Promise<LoginResult> {
  stack.sim.directLogin.memberId = memberId
  const callbackUrl = await startLogin(stack, browser, query)
  const response = await browser.fetch(callbackUrl)
  return { callbackUrl, response, location: response.headers.get('location') ?? '' }
}

/** A signed-in browser for a new member with `accounts` accounts. */
export async function signedIn(stack: Stack, accounts: number | Array<{ name: string }> = 3) {
  const member = stack.sim.addMember({
    name: 'Ada Buyer',
    email: `ada-${Math.random()}@example.com`,
    accounts,
  })
  const browser = new Browser()
  const result = await login(stack, browser, member.id)
  if (result.response.status !== 302 || result.location.includes('error=')) {
    throw new Error(`login failed: ${result.location}`)
  }
  return { member, browser, result }
}

export function api(stack: Stack, browser: Browser, path: string, init: RequestInit = {}): Promise<Response> {
  return browser.fetch(`${stack.bff}${path}`, { ...init, headers: { ...API, ...(init.headers as object) } })
}

/** `PUT /session/active-account` with a JSON body, as the storefront sends it. */
export function switchAccount(
  stack: Stack,
  browser: Browser,
  accountId: string | undefined,
): Promise<Response> {
  return api(stack, browser, '/session/active-account', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accountId }),
  })
}

export function cookieHost(stack: Stack): string {
  return new URL(stack.bff).host
}

/** The session cookie's name in this deployment (contract §2: `__Host-` when PUBLIC_URL is https). */
export function sessionCookie(stack: Stack): string {
  return stack.publicUrl.startsWith('https:') ? '__Host-epcc-bff' : 'epcc-bff'
}

/** Another browser (a tab whose request left before the cookie changed) holding `browser`'s session cookie now. */
export function withCookieOf(stack: Stack, browser: Browser): Browser {
  const copy = new Browser()
  const name = sessionCookie(stack)
  copy.setCookie(cookieHost(stack), name, browser.cookie(cookieHost(stack), name) ?? '')
  return copy
}

/** Resolves once the simulator has received a request that `match` accepts (it is then in flight). */
export async function inFlightAtEpcc(
  stack: Stack,
  match: (r: { method: string; path: string; body: unknown }) => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!stack.sim.log.some(match)) {
    if (Date.now() > until) throw new Error('the request never reached the simulator')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The `POST /v2/account-members/tokens` calls EPCC received with `mechanism` (renewals and page reads use the account token). */
export function tokenCalls(stack: Stack, mechanism = 'account_management_authentication_token') {
  return stack.sim
    .calls('POST', '/v2/account-members/tokens')
    .filter(
      (r) =>
        (r.body as { data?: { authentication_mechanism?: string } } | undefined)?.data
          ?.authentication_mechanism === mechanism,
    )
}
