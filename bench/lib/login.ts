import { request } from 'undici'

/** The `name=value` part of the first `Set-Cookie` line, if any. */
function setCookie(headers: Record<string, string | string[] | undefined>): string | undefined {
  const raw = headers['set-cookie']
  const line = Array.isArray(raw) ? raw[0] : raw
  return line?.split(';', 1)[0]
}

function location(headers: Record<string, string | string[] | undefined>): string {
  const value = headers.location
  if (typeof value !== 'string') throw new Error('expected a redirect')
  return value
}

/**
 * A complete login in direct mode, as a browser does it: `GET /auth/login` (the BFF sets its cookie and
 * redirects to EPCC), EPCC's authorization endpoint (the simulator redirects straight to the callback with a
 * code), `GET /oauth2/callback` with the cookie (the BFF exchanges the code). Returns the new session cookie.
 */
export async function directLogin(bff: string): Promise<string> {
  const start = await request(`${bff}/auth/login`)
  await start.body.dump()
  const startCookie = setCookie(start.headers)
  if (start.statusCode !== 302 || !startCookie) throw new Error(`login did not start: ${start.statusCode}`)

  const authorize = await request(location(start.headers))
  await authorize.body.dump()
  const callbackUrl = location(authorize.headers)
  if (!callbackUrl.startsWith(bff)) throw new Error(`EPCC did not redirect to the callback: ${callbackUrl}`)

  const callback = await request(callbackUrl, { headers: { cookie: startCookie } })
  await callback.body.dump()
  const sessionCookie = setCookie(callback.headers)
  if (callback.statusCode !== 302 || !sessionCookie || location(callback.headers).includes('error=')) {
    throw new Error(`callback failed: ${callback.statusCode} ${String(callback.headers.location)}`)
  }
  return sessionCookie
}
