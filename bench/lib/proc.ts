import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/** Linux reports process CPU time in clock ticks (`getconf CLK_TCK`, 100 on every common kernel). */
const CLK_TCK = 100

/** User + system CPU time of a process and all its threads so far, in µs (from /proc/<pid>/stat). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which may itself hold spaces: state is [0], utime [11], stime [12].
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK
}

const children = new Set<ChildProcess>()

/** Every process the bench started is stopped when it ends, however it ends. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stop(child)))
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  children.delete(child)
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

export interface StartOptions {
  env?: Record<string, string>
  /** Node flags (before the script). */
  nodeArgs?: string[]
  args?: string[]
}

/**
 * Starts `script` in its own Node process with an IPC channel, so that its CPU time is its own. stdout is a
 * pipe into a `cat > /dev/null` of its own, as a container runtime reads a server's log in a process of its
 * own (the BFF runs at LOG_LEVEL=info as shipped: one line per request). Not read here: this process is the
 * load generator, and waking it for log lines would slow the clients down. stderr is passed through.
 */
export function startNode(script: string, opts: StartOptions = {}): ChildProcess {
  const sink = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] })
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...(opts.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', sink.stdin, 'inherit', 'ipc'],
  })
  child.once('exit', () => sink.kill())
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Polls `url` until it answers with an accepted status (200 by default). */
export async function waitFor(
  url: string,
  opts: { timeoutMs?: number; accept?: (status: number) => boolean } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 20_000
  const accept = opts.accept ?? ((status: number) => status === 200)
  const giveUpAt = Date.now() + timeoutMs
  for (;;) {
    try {
      const response = await fetch(url)
      await response.body?.cancel()
      if (accept(response.status)) return
    } catch {}
    if (Date.now() > giveUpAt) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
    await sleep(100)
  }
}

interface Reply {
  id: number
  ok: boolean
  value?: unknown
  error?: string
}

/** Request/response over a child's IPC channel: `{id, type, ...}` out, `{id, ok, value|error}` back. */
export class Rpc {
  private next = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private readyWaiters: Array<(value: Record<string, unknown>) => void> = []
  private readyMessage: Record<string, unknown> | undefined

  constructor(readonly child: ChildProcess) {
    child.on('message', (raw: unknown) => {
      const message = raw as Reply & { type?: string }
      if (message.type === 'ready') {
        this.readyMessage = message as unknown as Record<string, unknown>
        for (const waiter of this.readyWaiters) waiter(this.readyMessage)
        this.readyWaiters = []
        return
      }
      const waiter = this.pending.get(message.id)
      if (!waiter) return
      this.pending.delete(message.id)
      if (message.ok) waiter.resolve(message.value)
      else waiter.reject(new Error(message.error))
    })
    child.once('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`child exited (${code})`))
      this.pending.clear()
    })
  }

  /** The child's `{type: 'ready', ...}` message. */
  ready<T extends Record<string, unknown>>(): Promise<T> {
    if (this.readyMessage) return Promise.resolve(this.readyMessage as T)
    return new Promise((resolve) => this.readyWaiters.push((m) => resolve(m as T)))
  }

  call<T>(type: string, payload: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: (v) => resolve(v as T), reject })
      this.child.send({ id, type, ...payload })
    })
  }
}

/** The child side of `Rpc`: answers each request with its handler's result. */
export function serveRpc(
  handlers: Record<string, (message: Record<string, unknown>) => unknown>,
  ready: Record<string, unknown>,
): void {
  process.on('message', (raw: unknown) => {
    const message = raw as { id: number; type: string } & Record<string, unknown>
    const handler = handlers[message.type]
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no handler for ${message.type}`)
        return handler(message)
      })
      .then(
        (value) => process.send?.({ id: message.id, ok: true, value }),
        (err: unknown) => process.send?.({ id: message.id, ok: false, error: String(err) }),
      )
  })
  // The parent going away ends this process too.
  process.on('disconnect', () => process.exit(0))
  process.send?.({ type: 'ready', ...ready })
}
