import { setTimeout as sleep } from 'node:timers/promises'
import type { RedisTopology } from '../redis-config.js'
import { type KeyValueStore, StoreUnavailableError } from './kv.js'
import { connectRedis, ReadyWait, type RedisClient } from './redis-connection.js'

/**
 * How long a request waits for the store, across a reconnect, a Sentinel failover being announced or a
 * cluster slot moving, before it answers 503: short enough that an outage still answers in under a second.
 */
const WAIT_BUDGET_MS = 300
const RETRY_PAUSE_MS = 50
const DELETE_IF_EQUALS =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
// HSET, then move the expiry only forward (PTTL < 0: no expiry yet).
const MAP_SET = `redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('pttl', KEYS[1])
if ttl < tonumber(ARGV[3]) then redis.call('pexpire', KEYS[1], ARGV[3]) end
return 1`
const MAP_UPDATE = `if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then return 0 end
${MAP_SET}`

export interface RedisStoreOptions {
  /** Prefix of every key this BFF writes (several deployments may share a Redis). */
  prefix?: string
  /** Called for connection errors; ioredis would otherwise crash the process on an unhandled 'error'. */
  onError?: (err: Error) => void
  /** Told of every command's outcome: false with the reason when it failed, true when it succeeded. */
  onAvailability?: (available: boolean, reason?: string) => void
}

/**
 * The shared store for several replicas, on one Redis node, a Sentinel-managed master or a Redis Cluster.
 * Every operation touches one key, so none crosses a cluster hash slot. While the store is away a command
 * waits (bounded) for the connection to come back and is retried when that cannot run it twice; otherwise it
 * fails with `StoreUnavailableError` (503): a write is never reported done unless Redis acknowledged it.
 */
export class RedisKeyValueStore implements KeyValueStore {
  private readonly redis: RedisClient
  private readonly prefix: string
  private readonly readiness: ReadyWait
  private readonly onAvailability: ((available: boolean, reason?: string) => void) | undefined

  constructor(target: string | RedisTopology, opts: RedisStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'epcc-bff:'
    this.redis = connectRedis(typeof target === 'string' ? { kind: 'single', url: target } : target)
    this.redis.on('error', (err: Error) => opts.onError?.(err))
    this.readiness = new ReadyWait(this.redis)
    this.onAvailability = opts.onAvailability
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.run(() => this.redis.get(this.prefix + key))) ?? undefined
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return this.delete(key)
    await this.run(() => this.redis.set(this.prefix + key, value, 'PX', Math.ceil(ttlMs)))
  }

  async update(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) {
      await this.delete(key)
      return false
    }
    const result = await this.run(() =>
      this.redis.set(this.prefix + key, value, 'PX', Math.ceil(ttlMs), 'XX'),
    )
    return result === 'OK'
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) {
      await this.delete(key)
      return false
    }
    return (await this.run(() => this.redis.pexpire(this.prefix + key, Math.ceil(ttlMs)))) === 1
  }

  async take(key: string): Promise<string | undefined> {
    // GETDEL (Redis ≥ 6.2) is atomic: of two replicas racing for one login transaction, one gets it.
    return (await this.run(() => this.redis.getdel(this.prefix + key), ONCE)) ?? undefined
  }

  async delete(key: string): Promise<void> {
    await this.run(() => this.redis.del(this.prefix + key))
  }

  add(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.setIfAbsent(key, value, ttlMs)
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const result = await this.run(
      () => this.redis.set(this.prefix + key, value, 'PX', Math.ceil(ttlMs), 'NX'),
      ONCE,
    )
    return result === 'OK'
  }

  async deleteIfEquals(key: string, value: string): Promise<void> {
    await this.run(() => this.redis.eval(DELETE_IF_EQUALS, 1, this.prefix + key, value))
  }

  async mapSet(key: string, field: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return
    await this.run(() => this.redis.eval(MAP_SET, 1, this.prefix + key, field, value, Math.ceil(ttlMs)))
  }

  async mapUpdate(key: string, field: string, value: string, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) return false
    const result = await this.run(() =>
      this.redis.eval(MAP_UPDATE, 1, this.prefix + key, field, value, Math.ceil(ttlMs)),
    )
    return result === 1
  }

  async mapDelete(key: string, field: string): Promise<void> {
    await this.run(() => this.redis.hdel(this.prefix + key, field))
  }

  async mapGetAll(key: string): Promise<Record<string, string>> {
    return this.run(() => this.redis.hgetall(this.prefix + key))
  }

  async ping(): Promise<void> {
    await this.run(() => this.redis.ping())
  }

  async close(): Promise<void> {
    this.redis.disconnect()
  }

  /**
   * Runs `command` once the connection is ready, within the wait budget. A command Redis refused without running
   * it (a demoted master, a cluster slot in transit, a connection not yet up) is tried again; one that may have
   * run (a timeout, a connection lost in flight) only when running it twice does no harm.
   */
  private async run<T>(command: () => Promise<T>, repeat: Repeat = REPEATABLE): Promise<T> {
    const deadline = Date.now() + WAIT_BUDGET_MS
    for (;;) {
      // A ready connection (nearly always) costs no wait and no extra promise.
      if (this.redis.status !== 'ready') await this.readiness.within(deadline - Date.now())
      try {
        const result = await command()
        this.onAvailability?.(true)
        return result
      } catch (err) {
        const again = repeat === REPEATABLE ? mayRepeat(err) : notRun(err)
        if (!again || Date.now() + RETRY_PAUSE_MS >= deadline) {
          this.onAvailability?.(false, err instanceof Error ? err.message : 'unknown')
          throw new StoreUnavailableError(err)
        }
        await sleep(RETRY_PAUSE_MS)
      }
    }
  }
}

type Repeat = 'repeatable' | 'once'
const REPEATABLE: Repeat = 'repeatable'
/** Not idempotent: a second GETDEL or SET NX after a first that ran would answer differently. */
const ONCE: Repeat = 'once'

/** Errors for which Redis (or ioredis) did not run the command: safe to send it again. */
const NOT_RUN =
  /^(READONLY|CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|MOVED|ASK)\b|enableOfflineQueue|Stream isn't writeable|None of startup nodes|Failed to refresh slots cache/

function notRun(err: unknown): boolean {
  return err instanceof Error && NOT_RUN.test(err.message)
}

/** A command that may have run is repeated unless Redis refused it for good (a wrong type, a syntax error). */
function mayRepeat(err: unknown): boolean {
  return (
    notRun(err) ||
    !(err instanceof Error && /^(ERR|WRONGTYPE|NOSCRIPT|NOPERM|NOAUTH|WRONGPASS)\b/.test(err.message))
  )
}
