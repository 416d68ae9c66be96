/** What the outage tells the log: once when it starts, once when it ends. */
export interface OutageLog {
  started(reason: string): void
  ended(summary: { refusedRequests: number; durationMs: number }): void
}

/**
 * A success this long after the last failure ends an outage. Sooner, the store may only be partly back (a
 * cluster whose other masters answer while one slot range fails over), and the outage would be logged as
 * ending and starting again with every request.
 */
const QUIET_MS = 1000

/**
 * The session store's outages, as two log lines each instead of one per refused request: the first failure
 * starts one (with its reason), every request answered 503 meanwhile is counted, and the first success a
 * moment after the last failure ends it.
 */
export class StoreOutage {
  private since: number | undefined
  private lastFailure = 0
  private refused = 0

  constructor(
    private readonly log: OutageLog,
    private readonly now: () => number = Date.now,
  ) {}

  get ongoing(): boolean {
    return this.since !== undefined
  }

  /** A store command failed. */
  failed(reason: string): void {
    this.lastFailure = this.now()
    if (this.since !== undefined) return
    this.since = this.lastFailure
    this.refused = 0
    this.log.started(reason)
  }

  /** A request was answered `503 session_store_unavailable`. */
  refusedRequest(reason: string): void {
    this.failed(reason)
    this.refused++
  }

  /** A store command succeeded. */
  recovered(): void {
    if (this.since === undefined || this.now() - this.lastFailure < QUIET_MS) return
    this.log.ended({ refusedRequests: this.refused, durationMs: this.now() - this.since })
    this.since = undefined
  }
}
