import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
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
