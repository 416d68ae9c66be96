/**
 * Memory per session, measured from inside: two BFFs built from `dist/` in this process (run with
 * --expose-gc), one on the bounded memory store and one on Redis under a key prefix of its own. The parent
 * logs sessions in over HTTP and asks, over IPC, for the heap after a full GC and for the Redis bytes under
 * the prefix (MEMORY USAGE of every key, then the keys are deleted).
 */
import { Redis } from 'ioredis'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { serveRpc } from './lib/proc.js'

const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')

const env = JSON.parse(process.env.BENCH_BFF_ENV ?? '{}') as Record<string, string>
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `epcc-bff-bench:${process.pid}:`

const memoryKv = new MemoryKeyValueStore()
const start = async (port: string, kv: MemoryKeyValueStore | RedisKeyValueStore) => {
  const app = await buildApp(
    loadConfig({ ...env, PORT: port, PUBLIC_URL: `http://127.0.0.1:${port}` }, '/nonexistent'),
    // Thousands of logins back to back keep the loop busy: shedding them would end the measurement.
    { kv, loadShedding: false },
  )
  await app.listen({ host: '127.0.0.1', port: Number(port) })
  await app.realm.refresh()
  return app
}
const memoryApp = await start(process.env.BENCH_MEMORY_PORT ?? '', memoryKv)
const redisApp = await start(process.env.BENCH_REDIS_PORT ?? '', new RedisKeyValueStore(redisUrl, { prefix }))
const redis = new Redis(redisUrl)

async function heapUsed(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc?.()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

/** Bytes Redis spends on every key under our prefix, by kind (`sess`, `vault`, …); the keys are deleted. */
async function redisBytes(): Promise<Record<string, { keys: number; bytes: number; valueChars: number }>> {
  const out: Record<string, { keys: number; bytes: number; valueChars: number }> = {}
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    for (const key of keys) {
      const kind = key.slice(prefix.length).split(':', 1)[0] ?? '?'
      const bytes = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
      // The member index is a hash (one field per session): its characters are its fields' and values'.
      const valueChars =
        (await redis.type(key)) === 'hash'
          ? Object.entries(await redis.hgetall(key)).reduce((n, [f, v]) => n + f.length + v.length, 0)
          : await redis.strlen(key)
      out[kind] ??= { keys: 0, bytes: 0, valueChars: 0 }
      const entry = out[kind]
      entry.keys++
      entry.bytes += bytes
      entry.valueChars += valueChars
      await redis.del(key)
    }
  } while (cursor !== '0')
  return out
}

serveRpc(
  {
    heap: () => heapUsed(),
    memoryEntries: () => memoryKv.size,
    redisBytes: () => redisBytes(),
    close: async () => {
      await redisBytes()
      await Promise.all([memoryApp.close(), redisApp.close()])
      redis.disconnect()
    },
  },
  {},
)
