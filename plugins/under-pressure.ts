import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'

/**
 * Load shedding: while the event loop is saturated (utilisation over 98 %, or a mean delay past a second),
 * requests get `503` with `Retry-After` instead of queueing up. Liveness (`/healthz`) and `/metrics` are exempt (their routes set their own pressure handler):
 * an overloaded process is alive, and restarting it would only lose its sessions.
 * @see https://github.com/fastify/under-pressure
 */
export interface LoadSheddingOptions {
  maxEventLoopDelay: number
  maxEventLoopUtilization: number
}

/** The production thresholds: the delay is a mean over the sample; a saturated loop shows first in its utilisation. */
export const LOAD_SHEDDING: LoadSheddingOptions = { maxEventLoopDelay: 1000, maxEventLoopUtilization: 0.98 }

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
