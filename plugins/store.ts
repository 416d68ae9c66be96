import fp from 'fastify-plugin'
import { type KeyValueStore, MemoryKeyValueStore } from '../src/session/kv.js'
import { isPendingLoginKey } from '../src/session/records.js'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { deriveSealingKeys, SealedKeyValueStore } from '../src/session/sealed.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where sessions, login transactions and tokens are kept, encrypted. */
    kv: KeyValueStore
  }
}

/**
 * The store under sessions: Redis when `REDIS_URL` is set, else the bounded in-memory store (or the one
 * passed in, for tests); either way every value is sealed with AES-256-GCM.
 * @see ../src/session/sealed.ts
 */
export default fp(
  async (app, opts: { kv?: KeyValueStore | undefined }) => {
    const { session } = app.config
    let lastError = ''
    const inner =
      opts.kv ??
      (session.redisUrl
        ? new RedisKeyValueStore(session.redisUrl, {
            // ioredis repeats a connection error on every retry: log each distinct one once.
            onError: (err) => {
              if (err.message !== lastError) app.log.error({ err: err.message }, 'redis connection error')
              lastError = err.message
            },
          })
        : new MemoryKeyValueStore({
            // Pending logins have a budget of their own: no flood of them can evict a member's session.
            isPending: isPendingLoginKey,
          }))
    if (inner instanceof MemoryKeyValueStore) app.metrics.countSessions(() => inner.count('sess:'))
    const kv = new SealedKeyValueStore(inner, deriveSealingKeys(session.secrets))
    app.decorate('kv', kv)
    app.addHook('onClose', async () => kv.close())
  },
  { name: 'store', dependencies: ['config', 'metrics'] },
)
