import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import type { RedisTopology } from '../redis-config.js'

/** A connection to one node, a Sentinel-managed master or a cluster: the same commands either way. */
export type RedisClient = Redis | Cluster

/**
 * Fail fast (no offline queue, one retry, short command and connect timeouts) so that while Redis is away a
 * request gets its 503 in well under a second; reconnect in the background so that service resumes without
 * a restart.
 */
const FAIL_FAST = {
  enableOfflineQueue: false,
  // Commands issued in the same tick of the event loop (the rate limits and the session read of concurrent
  // requests) go out in one write and come back in one read: under load, far fewer system calls per request.
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
  commandTimeout: 500,
  connectTimeout: 1000,
} satisfies RedisOptions

const retryStrategy = (attempt: number) => Math.min(attempt * 100, 1000)

/**
 * A node that answers READONLY was the master and has been demoted by a failover: reconnect (Sentinel names the
 * new master) and resend the command (2), which Redis refused and so never ran.
 */
const reconnectOnError = (err: Error) => (err.message.startsWith('READONLY') ? 2 : false)

/** The ioredis client for `topology`. `extra` adds options of the caller's own (a rate limiter's script). */
export function connectRedis(topology: RedisTopology, extra: Partial<RedisOptions> = {}): RedisClient {
  if (topology.kind === 'single') {
    return new Redis(topology.url, { ...FAIL_FAST, retryStrategy, reconnectOnError, ...extra })
  }
  const tls = topology.tls ? {} : undefined
  if (topology.kind === 'sentinel') {
    return new Redis({
      ...FAIL_FAST,
      retryStrategy,
      reconnectOnError,
      sentinels: topology.sentinels,
      name: topology.masterName,
      role: 'master',
      username: topology.username,
      password: topology.password,
      sentinelUsername: topology.sentinelUsername,
      sentinelPassword: topology.sentinelPassword,
      sentinelCommandTimeout: FAIL_FAST.connectTimeout,
      // After a round in which no Sentinel named the master, try again, never give up: a null here would end
      // the client for good (status 'end'), and only a restart would bring the store back.
      sentinelRetryStrategy: retryStrategy,
      // Subscribed to +switch-master: the client leaves a demoted master as soon as a Sentinel announces it.
      failoverDetector: true,
      ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
      ...extra,
    })
  }
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    // No auto-pipelining here: a batch fails or is redirected as a whole while a slot range fails over, and
    // the failover behaviour of a cluster (test/redis-cluster.test.ts) was proved command by command.
    // Every read and write goes to the slot's master: a replica may lag behind a write of the same request.
    scaleReads: 'master',
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    retryDelayOnTryAgain: 50,
    slotsRefreshTimeout: 1000,
    clusterRetryStrategy: retryStrategy,
    redisOptions: {
      ...FAIL_FAST,
      reconnectOnError,
      username: topology.username,
      password: topology.password,
      ...(tls ? { tls } : {}),
      ...extra,
    },
    // With TLS, connect to the names the nodes announce so that the certificate matches them (managed
    // cluster endpoints such as ElastiCache's serve certificates for their host names, not addresses).
    ...(tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
  }
  return new Cluster(topology.nodes, options)
}

/**
 * Resolves when `client` is ready, or after `ms`, whichever comes first. Every caller shares the one pending
 * wait and its one 'ready' listener: a burst of requests during an outage adds no listener per request.
 */
export class ReadyWait {
  private pending: Promise<void> | undefined

  constructor(private readonly client: RedisClient) {}

  /** True when the client is ready (at once or within `ms`). */
  async within(ms: number): Promise<boolean> {
    if (this.client.status === 'ready') return true
    if (ms <= 0) return false
    this.pending ??= new Promise<void>((resolve) => {
      this.client.once('ready', () => {
        this.pending = undefined
        resolve()
      })
    })
    const timer = new AbortController()
    await Promise.race([this.pending, sleep(ms, undefined, { signal: timer.signal }).catch(() => {})])
    timer.abort()
    // Read again: the status has changed while waiting (TypeScript narrowed it before the wait).
    return (this.client.status as string) === 'ready'
  }
}
