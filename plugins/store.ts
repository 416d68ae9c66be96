import fp from 'fastify-plugin'
import { type KeyValueStore, MemoryKeyValueStore } from '../src/session/kv.js'
import { StoreOutage } from '../src/session/outage.js'
import { isPendingLoginKey } from '../src/session/records.js'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { deriveSealingKeys, SealedKeyValueStore } from '../src/session/sealed.js'
import { SessionSigner } from '../src/session/signer.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where sessions, login transactions and tokens are kept, encrypted. */
    kv: KeyValueStore
    /** The store's current outage, if any: logged once as it starts and once as it ends. */
    storeOutage: StoreOutage
    /**
     * The session cookie's signature, from the same secrets as the sealing keys. One instance (one memo of
     * recent cookies) for the rate limiter, which counts only signed cookies per session, and the session
     * plugin, which reads them.
     */
    sessionSigner: SessionSigner
  }
}

/**
 * The store under sessions: Redis (one node, Sentinel or Cluster) when configured, else the bounded in-memory
 * store (or the one passed in, for tests); either way every value is sealed with AES-256-GCM.
 * @see ../src/session/sealed.ts
 * @see ../src/session/redis-connection.ts
 */
export default fp(
  async (app, opts: { kv?: KeyValueStore | undefined }) => {
    const outage = new StoreOutage({
      started: (reason) => app.log.error({ reason }, 'session store unavailable'),
      ended: (summary) => app.log.warn(summary, 'session store available again'),
    })
    app.decorate('storeOutage', outage)
    const inner =
      opts.kv ??
      (app.config.redis
        ? new RedisKeyValueStore(app.config.redis, {
            // ioredis repeats a connection error on every reconnect attempt: the first starts the outage (one
            // line, with the reason), the others only keep it going.
            onError: (err) => outage.failed(err.message),
            onAvailability: (available, reason) =>
              available ? outage.recovered() : outage.failed(reason ?? 'unknown'),
          })
        : new MemoryKeyValueStore({
            // Pending logins have a budget of their own: no flood of them can evict a member's session.
            isPending: isPendingLoginKey,
          }))
    if (inner instanceof MemoryKeyValueStore) app.metrics.countSessions(() => inner.count('sess:'))
    const kv = new SealedKeyValueStore(inner, deriveSealingKeys(app.config.session.secrets))
    app.decorate('kv', kv)
    app.decorate('sessionSigner', new SessionSigner(app.config.session.secrets))
    app.addHook('onClose', async () => kv.close())
  },
  { name: 'store', dependencies: ['config', 'metrics'] },
)
