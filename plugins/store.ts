import fp from 'fastify-plugin'
import { type KeyValueStore, MemoryKeyValueStore } from '../src/session/kv.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where sessions, login transactions and tokens are kept. */
    kv: KeyValueStore
  }
}

/**
 * The key-value store under sessions: the bounded in-memory store (one process), or the one passed in.
 * @see ../src/session/kv.ts
 */
export default fp(
  async (app, opts: { kv?: KeyValueStore | undefined }) => {
    const kv = opts.kv ?? new MemoryKeyValueStore()
    app.decorate('kv', kv)
    app.addHook('onClose', async () => kv.close())
  },
  { name: 'store' },
)
