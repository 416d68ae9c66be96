import { Redis } from 'ioredis'
import { type KeyValueStore, StoreUnavailableError } from './kv.js'

const READY_WAIT_MS = 300
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
}

/**
 * The shared store for several replicas. Fails fast (security.md §2.7): no offline queue, one retry, short
 * command and connect timeouts, so that while Redis is down a request gets 503 in well under a second;
 * ioredis keeps reconnecting in the background and service resumes without a restart.
 */
export class RedisKeyValueStore implements KeyValueStore {
  private readonly redis: Redis
  private readonly prefix: string

  constructor(url: string, opts: RedisStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'epcc-bff:'
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 500,
      connectTimeout: 1000,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    })
    this.redis.on('error', (err: Error) => opts.onError?.(err))
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
    return (await this.run(() => this.redis.getdel(this.prefix + key))) ?? undefined
  }

  async delete(key: string): Promise<void> {
    await this.run(() => this.redis.del(this.prefix + key))
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const result = await this.run(() =>
      this.redis.set(this.prefix + key, value, 'PX', Math.ceil(ttlMs), 'NX'),
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

  private ready(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.redis.off('ready', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.redis.once('ready', done)
    })
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    // Without an offline queue a command fails at once while (re)connecting: give a connection that is
    // on its way a moment to be ready, still well inside the one-second answer while Redis is down.
    if (this.redis.status !== 'ready') await this.ready(READY_WAIT_MS)
    try {
      return await command()
    } catch (err) {
      throw new StoreUnavailableError(err)
    }
  }
}
