import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * A loopback port that was free a moment ago, for a server that must know its port before it listens (the BFF's
 * PUBLIC_URL, a Redis started on it). Picked at random below the kernel's ephemeral range: the ports that
 * `listen(0)` and outgoing connections get come from that range, so none of them can take this port between
 * the check and the caller's own listen (with a port from `listen(0)`, CI once saw EADDRINUSE just so).
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow()
  for (let attempt = 0; attempt < 50 && low > MIN_PORT; attempt++) {
    const port = MIN_PORT + Math.floor(Math.random() * (low - MIN_PORT))
    if ((await listenOnce(port)) !== undefined) return port
  }
  const port = await listenOnce(0)
  if (port === undefined) throw new Error('no free loopback port')
  return port
}

/** Ports below this are left alone: services of the machine listen there. */
const MIN_PORT = 10_000

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)
    return Number(low) || 32_768
  } catch {
    return 32_768
  }
}

/** Listens on `port` (0: any) on loopback and closes again; the port, or undefined when it was taken. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(undefined))
    server.listen(port, '127.0.0.1', () => {
      const address = server.address()
      const bound = typeof address === 'object' && address ? address.port : undefined
      server.close(() => resolve(bound))
    })
  })
}

/**
 * One line for a port someone else holds, naming the setting that picks another, or undefined for any
 * other error. `settings` maps a port to what to set, e.g. `{ 3000: 'DEMO_BFF_PORT' }`.
 */
export function busyPortHint(err: unknown, settings: Record<number, string>): string | undefined {
  const e = err as { code?: unknown; port?: unknown }
  if (e?.code !== 'EADDRINUSE' || typeof e.port !== 'number') return undefined
  const setting = settings[e.port]
  return setting
    ? `port ${e.port} is already in use: stop what holds it, or set ${setting} to another port`
    : `port ${e.port} is already in use: stop what holds it`
}
