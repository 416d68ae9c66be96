import autocannon from 'autocannon'
import { cpuMicros } from './proc.js'

/** One thing under load: a URL on a server process whose CPU time is read from /proc. */
export interface Target {
  label: string
  url: string
  headers?: Record<string, string>
  pid: number
}

/** Everything measured for a target over all its slices. */
export interface Totals {
  label: string
  requests: number
  seconds: number
  errors: number
  cpuUs: number
  /** Every response time (ms). */
  latencies: number[]
  /** Requests per second of each measured slice, in order. */
  sliceRps: number[]
  /** Median latency (ms) of each measured slice, in order. */
  sliceP50: number[]
  /** CPU µs per 2xx answer of each measured slice, in order. */
  sliceCpu: number[]
}

export interface LoadOptions {
  connections: number
  sliceS: number
  warmupS: number
  cycles: number
  /**
   * Requests per second offered to every target (autocannon's `overallRate`), instead of as many as the
   * connections can send: CPU per request compared at one load that every target keeps up with.
   */
  rate?: number
  /** Print every slice (to stderr). */
  verbose?: boolean
  /** Run between slices (clearing the simulator's request log). */
  between?: () => Promise<void>
}

export interface SliceResult {
  requests: number
  seconds: number
  errors: number
  cpuUs: number
  latencies: number[]
}

/** One autocannon run against `target`, with the target process's CPU time over the same window. */
export function slice(
  target: Target,
  seconds: number,
  connections: number,
  rate?: number,
): Promise<SliceResult> {
  const latencies: number[] = []
  const cpuBefore = cpuMicros(target.pid)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        headers: target.headers ?? {},
        connections,
        duration: seconds,
        ...(rate ? { overallRate: rate } : {}),
      },
      (err, result) => {
        if (err) return reject(err)
        const elapsed = (performance.now() - started) / 1000
        const failed = Object.entries(result.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2'))
        if (failed.length > 0 || result.errors > 0) {
          const codes = failed.map(([code, stats]) => `${stats.count ?? 0}× ${code}`)
          process.stderr.write(
            `  ${target.label}: ${[...codes, `${result.errors} socket errors`].join(', ')}\n`,
          )
        }
        resolve({
          // Only answers that succeeded count: a server shedding load with quick 503s is not faster.
          requests: result['2xx'],
          seconds: elapsed,
          // Connection errors, timeouts and any non-2xx answer (a 401 would mean a lost session).
          errors: result.errors + result.non2xx,
          cpuUs: cpuMicros(target.pid) - cpuBefore,
          latencies,
        })
      },
    )
    instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
      if (status >= 200 && status < 300) latencies.push(responseTime)
    })
  })
}

function empty(label: string): Totals {
  return {
    label,
    requests: 0,
    seconds: 0,
    errors: 0,
    cpuUs: 0,
    latencies: [],
    sliceRps: [],
    sliceP50: [],
    sliceCpu: [],
  }
}

function add(totals: Totals, s: SliceResult): void {
  totals.requests += s.requests
  totals.seconds += s.seconds
  totals.errors += s.errors
  totals.cpuUs += s.cpuUs
  for (const l of s.latencies) totals.latencies.push(l)
  totals.sliceRps.push(s.requests / s.seconds)
  totals.sliceP50.push(percentile(Array.from(Float64Array.from(s.latencies).sort()), 50))
  totals.sliceCpu.push(s.cpuUs / s.requests)
}

/**
 * The targets in alternating short slices: each cycle runs every target once, in order, the order reversed
 * on odd cycles (A B C, C B A, A B C, …), so that a machine whose speed drifts within minutes drifts under
 * all alike. Each is warmed up first. The totals come back in the order of `targets`.
 */
export async function alternate(targets: Target[], opts: LoadOptions): Promise<Totals[]> {
  for (const target of targets) {
    await slice(target, opts.warmupS, opts.connections, opts.rate)
    await opts.between?.()
  }
  const totals = targets.map((target) => empty(target.label))
  const forward = targets.map((_, i) => i)
  const backward = [...forward].reverse()
  for (let cycle = 0; cycle < opts.cycles; cycle++) {
    for (const i of cycle % 2 === 0 ? forward : backward) {
      const target = targets[i]!
      const s = await slice(target, opts.sliceS, opts.connections, opts.rate)
      add(totals[i]!, s)
      if (opts.verbose) {
        const rps = Math.round(s.requests / s.seconds)
        process.stderr.write(`  ${target.label}: ${rps} req/s, ${Math.round(s.cpuUs / s.requests)} µs/req\n`)
      }
      await opts.between?.()
    }
  }
  return totals
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export interface Summary {
  label: string
  rps: number
  p50: number
  p99: number
  errors: number
  cpuUsPerRequest: number
  /** The same as a share of one core: 1 = a full core busy. */
  cores: number
}

export function summarize(t: Totals): Summary {
  const sorted = Float64Array.from(t.latencies).sort()
  const asArray = Array.from(sorted)
  return {
    label: t.label,
    rps: t.requests / t.seconds,
    p50: percentile(asArray, 50),
    p99: percentile(asArray, 99),
    errors: t.errors,
    cpuUsPerRequest: t.cpuUs / t.requests,
    cores: t.cpuUs / 1e6 / t.seconds,
  }
}

/** Per-cycle ratios a/b of requests per second (slice i of a against slice i of b). */
export function sliceRatios(a: Totals, b: Totals): number[] {
  return a.sliceRps.map((rps, i) => rps / (b.sliceRps[i] ?? Number.NaN))
}

/** Per-cycle ratios a/b of CPU µs per request (lower is cheaper). */
export function sliceCpuRatios(a: Totals, b: Totals): number[] {
  return a.sliceCpu.map((cpu, i) => cpu / (b.sliceCpu[i] ?? Number.NaN))
}

/** Per-cycle ratios a/b of the median latency. */
export function sliceP50Ratios(a: Totals, b: Totals): number[] {
  return a.sliceP50.map((p50, i) => p50 / (b.sliceP50[i] ?? Number.NaN))
}

export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
