import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import type { SignedIn } from '../src/session/model.js'
import { isPendingLoginKey, SessionRecords } from '../src/session/records.js'
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
  await store.set('sess:member', 's'.repeat(4_000), 60_000)
  await store.set('vault:member', 'v'.repeat(4_000), 60_000)
  for (let i = 0; i < 1_000; i++) {
    await store.set(`login:${i}`, 'l'.repeat(90), 60_000)
    await store.set(`prelogin:${i}`, 'p'.repeat(90), 60_000)
  }
  t.equal(await store.get('sess:member'), 's'.repeat(4_000), 'the session is kept')
  t.equal(await store.get('vault:member'), 'v'.repeat(4_000), 'the vault is kept')
  t.ok(store.usage.pendingChars <= 2_000, `pending logins hold ${store.usage.pendingChars} characters`)
  t.equal(await store.get('login:0'), undefined, 'the oldest pending logins went')
  t.equal(await store.get('login:999'), 'l'.repeat(90), 'the newest is kept')
  t.equal(store.usage.chars, 8_000 + 'sess:member'.length + 'vault:member'.length)
})

t.test(
  'a map in the memory store counts its fields against the budget, and what is read out is a copy',
  async (t) => {
    const store = new MemoryKeyValueStore({ maxChars: 1_000 })
    t.teardown(() => store.close())
    const key = 'member:m-1'
    await store.mapSet(key, 'vault-a', 'x'.repeat(10), 60_000)
    await store.mapSet(key, 'vault-b', 'y'.repeat(20), 60_000)
    t.equal(store.usage.chars, key.length + 7 + 10 + 7 + 20, 'key, fields and values')
    await store.mapSet(key, 'vault-a', 'z'.repeat(30), 60_000)
    t.equal(
      store.usage.chars,
      key.length + 7 + 30 + 7 + 20,
      'a field written again counts its new value only',
    )
    const read = await store.mapGetAll(key)
    read['vault-c'] = 'planted'
    t.same(await store.mapGetAll(key), { 'vault-a': 'z'.repeat(30), 'vault-b': 'y'.repeat(20) }, 'a copy')
    t.equal(await store.get(key), undefined, 'a map is not a string value')
    await store.mapDelete(key, 'vault-a')
    t.equal(store.usage.chars, key.length + 7 + 20)
    await store.mapDelete(key, 'vault-b')
    t.equal(store.usage.chars, 0, 'the map goes with its last field')
    t.same(await store.mapGetAll(key), {})

    // A map written past the budget pushes the oldest writes out, as a string would.
    await store.set('sess:old', 'o'.repeat(500), 60_000)
    for (let i = 0; i < 20; i++) await store.mapSet(key, `vault-${i}`, 'v'.repeat(30), 60_000)
    t.equal(await store.get('sess:old'), undefined, 'the oldest write went')
    t.ok(store.usage.chars <= 1_000, `holds ${store.usage.chars} characters`)
  },
)

t.test('the memory store sweeps expired entries without being asked', async (t) => {
  let now = 0
  const store = new MemoryKeyValueStore({ sweepIntervalMs: 20, now: () => now })
  t.teardown(() => store.close())
  await store.set('a', 'v', 100)
  now = 200
  await new Promise((r) => setTimeout(r, 60))
  t.equal(store.size, 0)
})

t.test('session records: written, updated only while they live, replaced under a new id', async (t) => {
  const kv = new MemoryKeyValueStore()
  t.teardown(() => kv.close())
  const now = Date.now()
  const policy = { idleMs: 60_000, absoluteMs: 600_000 }
  const records = new SessionRecords(kv, policy, () => now)
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
  const id = await records.create({ logins: ['x'], auth })
  t.match(id, /^[A-Za-z0-9_-]{43}$/, '32 random bytes')
  t.same(await records.resolve(id), { state: 'live', id, record: { logins: ['x'], auth } })

  t.equal(await records.update(id, { auth }), true)
  t.same(await records.get(id), { auth })

  const result = await records.replace(id, (old) => ({ ...old, logins: ['y'] }))
  const replaced = 'id' in result ? result.id : ''
  t.ok(replaced)
  t.not(replaced, id, 'a new id')
  t.same(await records.resolve(id), { state: 'replaced', id, replacedBy: replaced })
  t.equal(await records.update(id, { auth }), false, 'the replaced id is not written again')
  t.equal(await records.get(id), undefined)
  t.same(await records.replace(id, (old) => old), { replacedBy: replaced }, 'an id is replaced once')
  t.same(await records.resolve(id), { state: 'replaced', id, replacedBy: replaced }, 'its marker stays')

  const taken = await records.take(replaced)
  t.same(taken, { auth, logins: ['y'] })
  t.same(await records.resolve(replaced), { state: 'ended' })
  t.equal(await records.update(replaced, { auth }), false, 'an ended id is not written again')

  await kv.set(`sess:s0`, JSON.stringify({ cookie: { path: '/' }, auth: JSON.stringify(auth) }), 60_000)
  t.same(await records.get('s0'), { auth }, 'a record in the earlier shape (state as a string) reads')
  await kv.set('sess:s2', 'not json', 60_000)
  t.same(await records.resolve('s2'), { state: 'ended' }, 'an unreadable record is no session')
})

t.test('a logout that takes the marker withdraws a replacement on its way', async (t) => {
  const kv = new MemoryKeyValueStore()
  t.teardown(() => kv.close())
  const records = new SessionRecords(kv, { idleMs: 60_000, absoluteMs: 600_000 })
  const id = await records.create({ logins: ['x'] })
  let newId: string | undefined
  const replaced = await records.replace(id, (old) => {
    // The logout arrives after the old record was taken, before the new one is written.
    void records.takeReplacement(id).then((next) => {
      newId = next
    })
    return old
  })
  t.same(replaced, { ended: { logins: ['x'] } }, 'nothing was created; the record taken is handed back')
  t.ok(newId, 'the logout saw the replacement')
  t.equal(await records.get(newId ?? ''), undefined)
})

t.test(
  'of two replacements of one id at the same instant, one wins and the marker stays its own',
  async (t) => {
    const kv = new MemoryKeyValueStore()
    t.teardown(() => kv.close())
    const records = new SessionRecords(kv, { idleMs: 60_000, absoluteMs: 600_000 })
    const id = await records.create({ logins: ['x'] })
    const results = await Promise.all([records.replace(id, (old) => old), records.replace(id, (old) => old)])
    const won = results.filter((r) => 'id' in r)
    t.equal(won.length, 1, 'one wins')
    const winner = won[0] && 'id' in won[0] ? won[0].id : ''
    t.same(
      results.filter((r) => !('id' in r)),
      [{ replacedBy: winner }],
      'the other is told who',
    )
    t.same(await records.resolve(id), { state: 'replaced', id, replacedBy: winner })
    t.same(await records.get(winner), { logins: ['x'] })
  },
)
