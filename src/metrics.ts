import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * The BFF's Prometheus metrics, one registry per app. Labels carry routes, operations, statuses and outcome
 * codes only: never a member id, an account id, a session id or a token.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly requestDuration = new Histogram({
    name: 'bff_http_request_duration_seconds',
    help: 'Duration of HTTP requests served by the BFF, by route pattern, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  })
  readonly logins = new Counter({
    name: 'bff_logins_total',
    help: 'Completed login callbacks by outcome (success or the contract error code)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly epccCalls = new Histogram({
    name: 'bff_epcc_call_duration_seconds',
    help: 'EPCC calls made by the BFF itself (not the proxy), by operation and HTTP status (or "error")',
    labelNames: ['operation', 'status'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })
  readonly proxied = new Histogram({
    name: 'bff_proxy_request_duration_seconds',
    help: 'Requests forwarded to EPCC by /api/epcc, by method and upstream status (or "error")',
    labelNames: ['method', 'status'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })
  readonly renewals = new Counter({
    name: 'bff_token_renewals_total',
    help: 'Account token renewals by outcome (renewed, refused, unavailable)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly revokedSessions = new Counter({
    name: 'bff_sessions_revoked_total',
    help: 'Sessions ended by a revocation, by who asked (member: sign out everywhere; operator: admin API; limit: a login beyond MAX_SESSIONS_PER_MEMBER)',
    labelNames: ['by'] as const,
    registers: [this.registry],
  })
  readonly storeErrors = new Counter({
    name: 'bff_session_store_errors_total',
    help: 'Requests that failed because the session store did not answer',
    registers: [this.registry],
  })

  // One labelled child per route pattern, method and status, found by a string key: prom-client's own
  // `observe(labels, …)` sorts and joins the label object on every call.
  private readonly requestSeries = new Map<string, { observe(value: number): void }>()

  /** A request served: `elapsedMs` under its route pattern (`unmatched` when no route matched). */
  observeRequest(route: string | undefined, method: string, status: number, elapsedMs: number): void {
    const key = `${method} ${status} ${route}`
    let series = this.requestSeries.get(key)
    if (!series) {
      series = this.requestDuration.labels({ route: route ?? 'unmatched', method, status: String(status) })
      this.requestSeries.set(key, series)
    }
    series.observe(elapsedMs / 1000)
  }

  private readonly proxiedSeries = new Map<string, { observe(value: number): void }>()

  /** A proxied call answered by EPCC with `status` (or `error`) after `elapsedMs`. */
  observeProxied(method: string, status: string, elapsedMs: number): void {
    const key = `${method} ${status}`
    let series = this.proxiedSeries.get(key)
    if (!series) {
      series = this.proxied.labels({ method, status })
      this.proxiedSeries.set(key, series)
    }
    series.observe(elapsedMs / 1000)
  }

  /** 1 while calls to EPCC fail fast because EPCC kept failing. */
  watchCircuit(isOpen: () => boolean): void {
    new Gauge({
      name: 'bff_epcc_circuit_open',
      help: '1 while calls to EPCC fail fast because EPCC kept failing, else 0',
      registers: [this.registry],
      collect() {
        this.set(isOpen() ? 1 : 0)
      },
    })
  }

  /** Sessions held by the in-memory store (absent with Redis, where Redis itself is the place to look). */
  countSessions(count: () => number): void {
    new Gauge({
      name: 'bff_memory_store_sessions',
      help: 'Session records held in the in-memory store',
      registers: [this.registry],
      collect() {
        this.set(count())
      },
    })
  }
}
