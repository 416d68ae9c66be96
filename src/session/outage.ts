/** What the outage tells the log: once when it starts, once when it ends. */
export interface OutageLog {
  started(reason: string): void
  ended(summary: { refusedRequests: number; durationMs: number }): void
}

/**
 * The session store's outages, as two log lines each instead of one per refused request: the first failure
 * starts one (with its reason), every request answered 503 meanwhile is counted, and the first success ends it.
 */
export class StoreOutage {
  private since: number | undefined
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
    if (this.since !== undefined) return
    this.since = this.now()
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
    if (this.since === undefined) return
    this.log.ended({ refusedRequests: this.refused, durationMs: this.now() - this.since })
    this.since = undefined
  }
}
