/**
 * A stack whose EPCC_BASE_URL is a man-in-the-middle in front of the simulator's API port, so a
 * probe can rewrite what "EPCC" answers (echo a secret in an error title, redirect, hang).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { request } from 'undici'
import { type Deployment, type LogCapture, type Stack, startStack } from './stack.js'

export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

/** Returns true when it answered `res` itself; false to forward to the simulator. */
export type Rule = (req: Seen, res: ServerResponse) => boolean | Promise<boolean>

export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => void handler(req, res, Buffer.concat(chunks).toString('utf8')))
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}

export interface MitmOptions {
  env?: Record<string, string>
  /** Rules in place before the BFF starts (its first realm load passes through them). */
  rules?: Rule[]
  /** A path EPCC_BASE_URL carries in front of the simulator's paths (a gateway's prefix). */
  epccPath?: string
  deployment?: Deployment
}

/**
 * The harness's stack (startStack) with a man-in-the-middle as EPCC: every call the BFF makes to "EPCC" is
 * recorded in `seen` and offered to `rules` (in order) before it goes on to the simulator.
 */
export async function mitmStack(
  t: Test,
  opts: MitmOptions = {},
): Promise<{ stack: Stack; rules: Rule[]; seen: Seen[]; logs: LogCapture }> {
  const epccPath = opts.epccPath ?? ''
  const rules: Rule[] = [...(opts.rules ?? [])]
  const seen: Seen[] = []
  const front = async (apiUrl: string) => {
    const mitm = await startServer(async (req, res, body) => {
      const s: Seen = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body }
      seen.push(s)
      for (const rule of rules) if (await rule(s, res)) return
      const headers = { ...req.headers }
      delete headers.host
      delete headers.connection
      delete headers['content-length']
      delete headers['transfer-encoding']
      try {
        const forwardPath = epccPath && s.url.startsWith(epccPath) ? s.url.slice(epccPath.length) : s.url
        const up = await request(`${apiUrl}${forwardPath}`, {
          method: s.method as 'GET',
          headers,
          body: body === '' ? undefined : body,
        })
        const text = await up.body.text()
        const out: Record<string, string | string[]> = {}
        for (const [k, v] of Object.entries(up.headers)) {
          if (
            v !== undefined &&
            !['connection', 'transfer-encoding', 'content-length', 'keep-alive'].includes(k)
          )
            out[k] = v
        }
        res.writeHead(up.statusCode, out).end(text)
      } catch (err) {
        res.writeHead(599).end(String(err))
      }
    })
    t.teardown(() => mitm.close())
    return `${mitm.url}${epccPath}`
  }
  const stack = await startStack(t, {
    deployment: opts.deployment,
    env: { LOG_LEVEL: 'debug', ...opts.env },
    epccFront: front,
    realmMayFail: true,
  })
  return { stack, rules, seen, logs: stack.logs }
}

/** Every secret-looking value the MITM saw go to "EPCC": bearer tokens, account tokens, code, verifier, secret. */
export function secretsIn(seen: Seen[], extra: string[] = []): string[] {
  const out = new Set<string>(extra)
  for (const s of seen) {
    const auth = s.headers.authorization
    if (typeof auth === 'string' && auth.startsWith('Bearer ')) out.add(auth.slice(7))
    const at = s.headers['ep-account-management-authentication-token']
    if (typeof at === 'string') out.add(at)
    try {
      const b = JSON.parse(s.body) as { data?: Record<string, unknown> }
      for (const f of ['oauth_authorization_code', 'oauth_code_verifier']) {
        const v = b?.data?.[f]
        if (typeof v === 'string') out.add(v)
      }
    } catch {}
    const form = new URLSearchParams(s.body)
    const cs = form.get('client_secret')
    if (cs) out.add(cs)
  }
  return [...out].filter((x) => x.length >= 12)
}

/**
 * Log lines holding a secret, or any 24-character piece of it: an error text cut short (EPCC's titles are
 * kept to 200 characters) still gives most of a token away.
 */
export function leaks(lines: string[], secrets: string[]): Array<{ secret: string; line: string }> {
  const found: Array<{ secret: string; line: string }> = []
  for (const secret of secrets) {
    const pieces = [secret]
    for (let i = 0; i + 24 <= secret.length; i += 12) pieces.push(secret.slice(i, i + 24))
    for (const line of lines) if (pieces.some((p) => line.includes(p))) found.push({ secret, line })
  }
  return found
}

/** A rule that answers every call under `pathPrefix` itself, with `200`, `headers` and `body`. */
export function answerUnder(pathPrefix: string, headers: Record<string, string>, body: string): Rule {
  return (req, res) => {
    if (!req.url.startsWith(pathPrefix)) return false
    res.writeHead(200, headers).end(body)
    return true
  }
}

export function epccError(res: ServerResponse, status: number, title: string): true {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ errors: [{ status, title, detail: title }] }))
  return true
}
