/** Injected failures (epcc-api.md §4.5): what a flaky EPCC, CDN or network does to a request. */
import { type Quirks, type Res, sendError, sendHtml } from './http.js'

export type FaultKind = 'status' | 'html5xx' | 'hang' | 'reset' | 'delay' | 'rate-limit' | 'trickle'

export interface Fault {
  method?: string
  path: string | RegExp
  kind: FaultKind
  status?: number
  delayMs?: number
  /** `trickle`: the body's length in bytes, one sent every `delayMs`. */
  bytes?: number
  retryAfterS?: number
  times?: number
}

interface ArmedFault extends Fault {
  remaining: number
}

export class Faults {
  private list: ArmedFault[] = []
  private readonly timers = new Set<NodeJS.Timeout>()
  private closed = false

  add(f: Fault): void {
    if (typeof f.path === 'string' && !f.path.startsWith('/')) throw new Error('fault path must start with /')
    this.list.push({ ...f, remaining: f.times ?? Number.POSITIVE_INFINITY })
  }

  clear(): void {
    this.list = []
  }

  /** The first armed fault for this request, counted as used. */
  take(method: string, path: string): Fault | undefined {
    const f = this.list.find(
      (x) =>
        x.remaining > 0 &&
        (!x.method || x.method.toUpperCase() === method.toUpperCase()) &&
        (typeof x.path === 'string' ? path.startsWith(x.path) : x.path.test(path)),
    )
    if (!f) return undefined
    f.remaining -= 1
    return f
  }

  /** Answers (or refuses to answer) per the fault; resolves `true` when the request should go on normally. */
  async apply(f: Fault, res: Res, quirks: Quirks): Promise<boolean> {
    switch (f.kind) {
      case 'status':
        sendError(res, quirks, f.status ?? 500, { detail: 'simulated fault' })
        return false
      case 'html5xx': {
        const status = f.status ?? 502
        sendHtml(
          res,
          status,
          `<html><head><title>${status} Bad Gateway</title></head><body><center><h1>${status} Bad Gateway</h1></center><hr><center>cdn</center></body></html>`,
        )
        return false
      }
      case 'rate-limit':
        sendError(
          res,
          quirks,
          429,
          { detail: 'rate limit exceeded' },
          { 'retry-after': String(f.retryAfterS ?? 1) },
        )
        return false
      case 'reset':
        res.socket?.destroy()
        return false
      case 'hang':
        // Never answered; close() tears the socket down.
        return false
      case 'delay':
        await this.sleep(f.delayMs ?? 1000)
        return !this.closed && !res.destroyed
      case 'trickle': {
        // Headers at once, then the body a byte at a time: each byte comes quickly, the whole body slowly.
        const bytes = f.bytes ?? 20
        res.writeHead(f.status ?? 200, {
          'content-type': 'application/json',
          'content-length': String(bytes),
        })
        for (let i = 0; i < bytes && !this.closed && !res.destroyed; i++) {
          await this.sleep(f.delayMs ?? 100)
          res.write(' ')
        }
        if (!res.destroyed) res.end()
        return false
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t)
        resolve()
      }, ms)
      this.timers.add(t)
    })
  }

  close(): void {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }
}
