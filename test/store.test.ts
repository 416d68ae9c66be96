import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import type { SessionRecord, SignedIn } from '../src/session/model.js'
import { SessionRecordStore, sessionKey } from '../src/session/store.js'
import { storeContract } from './support/store-contract.js'

storeContract(t, 'memory', async () => new MemoryKeyValueStore())

t.test('the memory store is bounded: the oldest writes go first', async (t) => {
  const store = new MemoryKeyValueStore({ maxChars: 1000 })
  t.teardown(() => store.close())
  for (let i = 0; i < 50; i++) await store.set(`k${i}`, 'x'.repeat(95), 60_000)
  t.ok(store.size <= 10, `holds ${store.size} entries`)
  t.equal(await store.get('k0'), undefined)
  t.equal(await store.get('k49'), 'x'.repeat(95))
})

t.test('the memory store sweeps expired entries without being asked', async (t) => {
  let now = 0
  const store = new MemoryKeyValueStore({ sweepIntervalMs: 20, now: () => now })
  t.teardown(() => store.close())
  await store.set('a', 'v', 100)
  now = 200
  await new Promise((r) => setTimeout(r, 60))
  t.equal(store.size, 0)
})

t.test(
  'session records: the signed-in state round-trips, read back frozen; earlier records still read',
  async (t) => {
    const kv = new MemoryKeyValueStore()
    t.teardown(() => kv.close())
    const now = Date.now()
    const policy = { idleMs: 60_000, absoluteMs: 600_000 }
    const records = new SessionRecordStore(kv, policy, () => now)
    const auth: SignedIn = {
      member: { id: 'm-1', name: 'Ada', email: 'ada@example.com' },
      activeAccount: { id: 'a-1', name: 'Acme' },
      accountCount: 2,
      vaultId: 'v-1',
      activeIndex: 0,
      tokenIssuedAt: now,
      tokenExpiresAt: now + 3_600_000,
      createdAt: now,
      lastSeenAt: now,
    }
    const get = (id: string) =>
      new Promise<SessionRecord | null | undefined>((resolve, reject) =>
        records.get(id, (err, record) => (err ? reject(err) : resolve(record))),
      )
    await new Promise<void>((resolve, reject) =>
      records.set('s1', { logins: ['x'], auth }, (err) => (err ? reject(err) : resolve())),
    )
    const read = await get('s1')
    t.same(read, { logins: ['x'], auth })
    t.ok(
      read?.auth && Object.isFrozen(read.auth) && Object.isFrozen(read.auth.member),
      'frozen: never changed in place',
    )

    await kv.set(sessionKey('s0'), JSON.stringify({ cookie: { path: '/', httpOnly: true }, auth }), 60_000)
    t.same(await get('s0'), { auth }, 'a record in the earlier shape (state as an object, cookie copy) reads')
    await kv.set(sessionKey('s2'), 'not json', 60_000)
    t.equal(await get('s2'), null, 'an unreadable record is no session')
  },
)
