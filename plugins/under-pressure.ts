import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'

/**
 * Load shedding: while the event loop lags (a mean delay past a second over the last half second), requests
 * get `503 overloaded` with `Retry-After` instead of queueing up. Liveness (`/healthz`) and `/metrics` are
 * exempt (their routes set their own pressure handler): an overloaded process is alive, and restarting it
 * would only lose its sessions.
 *
 * Deliberately not on event-loop utilisation: a process that keeps up with its clients is 100 % busy too, and
 * once it sheds, answering every client with a fast 503 keeps it 100 % busy, so a utilisation threshold never
 * lets go (BENCHMARKS.md, "Findings"). Delay measures what a client waits for; a fast 503 brings it down.
 * @see https://github.com/fastify/under-pressure
 */
export interface LoadSheddingOptions {
  maxEventLoopDelay: number
}

/** The production threshold, in milliseconds of mean event-loop delay. */
export const LOAD_SHEDDING: LoadSheddingOptions = { maxEventLoopDelay: 1000 }

export default fp(
  async (app, opts: { thresholds?: LoadSheddingOptions | false }) => {
    if (opts.thresholds === false) return
    await app.register(underPressure, {
      ...(opts.thresholds ?? LOAD_SHEDDING),
      sampleInterval: 500,
      retryAfter: 5,
      exposeStatusRoute: false,
    })
  },
  { name: 'under-pressure' },
)
