import { Agent, createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * What stands in front of the BFF in a production deployment: a TLS-terminating proxy (the browser speaks
 * https to it; it forwards plain http with `X-Forwarded-Proto: https`) that balances each request across the
 * replicas in turn. The tests' browsers reach it over plain http on loopback and treat its origin as https
 * (see `Browser`); everything else — cookies, redirects, `Secure` — behaves as it would behind TLS.
 */
export async function startFront(
  port: number,
  upstreams: () => string[],
  opts: {
    proto: 'http' | 'https'
    host?: string
    /** Holds a request on its way (as a slow network would) until the promise settles. */
    hold?: (method: string, path: string) => Promise<void> | undefined
  },
): Promise<{ close(): Promise<void> }> {
  const agent = new Agent({ keepAlive: true })
  let next = 0
  const server: Server = createServer(async (req, res) => {
    await opts.hold?.(req.method ?? '', req.url ?? '')
    const targets = upstreams()
    const target = new URL(targets[next++ % targets.length] ?? '')
    const headers = { ...req.headers, 'x-forwarded-proto': opts.proto, 'x-forwarded-for': '203.0.113.7' }
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.rawHeaders)
        response.pipe(res)
      },
    )
    upstream.on('error', () => {
      res.writeHead(502).end()
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(port, opts.host ?? '127.0.0.1', resolve))
  const address = server.address() as AddressInfo
  if (address.port !== port) throw new Error('the front did not listen where asked')
  return {
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
