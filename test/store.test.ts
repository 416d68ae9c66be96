import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import type { SessionRecord, SignedIn } from '../src/session/model.js'
import { isPendingLoginKey, SessionRecordStore, sessionKey } from '../src/session/store.js'
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

t.test('pending logins have a budget of their own: they never evict a session or a vault', async (t) => {
  const store = new MemoryKeyValueStore({
    maxChars: 10_000,
    pendingMaxChars: 2_000,
    isPending: isPendingLoginKey,
  })
  t.teardown(() => store.close())
  await store.set(sessionKey('member'), 's'.repeat(4_000), 60_000)
  await store.set('vault:member', 'v'.repeat(4_000), 60_000)
  for (let i = 0; i < 1_000; i++) {
    await store.set(`login:${i}`, 'l'.repeat(90), 60_000)
    await store.set(`prelogin:${i}`, 'p'.repeat(90), 60_000)
  }
  t.equal(await store.get(sessionKey('member')), 's'.repeat(4_000), 'the session is kept')
  t.equal(await store.get('vault:member'), 'v'.repeat(4_000), 'the vault is kept')
  t.ok(store.usage.pendingChars <= 2_000, `pending logins hold ${store.usage.pendingChars} characters`)
  t.equal(await store.get('login:0'), undefined, 'the oldest pending logins went')
  t.equal(await store.get('login:999'), 'l'.repeat(90), 'the newest is kept')
  t.equal(store.usage.chars, 8_000 + sessionKey('member').length + 'vault:member'.length)
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
