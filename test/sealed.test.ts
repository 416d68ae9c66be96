import t from 'tap'
import { MemoryKeyValueStore } from '../src/session/kv.js'
import { deriveSealingKeys, SealedKeyValueStore } from '../src/session/sealed.js'
import { storeContract } from './support/store-contract.js'

const OLD = 'old-secret-old-secret-old-secret-0001'
const NEW = 'new-secret-new-secret-new-secret-0002'

storeContract(
  t,
  'sealed memory',
  async () => new SealedKeyValueStore(new MemoryKeyValueStore(), deriveSealingKeys([NEW])),
)

t.test('values are encrypted at rest with a fresh IV and a key id', async (t) => {
  const inner = new MemoryKeyValueStore()
  t.teardown(() => inner.close())
  const store = new SealedKeyValueStore(inner, deriveSealingKeys([NEW]))
  await store.set('sess:a', 'account-token-in-clear', 60_000)
  const first = (await inner.get('sess:a')) ?? ''
  await store.set('sess:a', 'account-token-in-clear', 60_000)
  const second = (await inner.get('sess:a')) ?? ''
  t.notMatch(first, /account-token-in-clear/)
  t.not(first, second, 'a new IV per write')
  const [version, kid] = first.split('.')
  t.equal(version, 'v1')
  t.equal(kid, deriveSealingKeys([NEW])[0]?.id)
  t.notMatch(first, new RegExp(NEW))
  t.equal(await store.get('sess:a'), 'account-token-in-clear')
})

t.test('a ciphertext moved under another key does not open', async (t) => {
  const inner = new MemoryKeyValueStore()
  t.teardown(() => inner.close())
  const store = new SealedKeyValueStore(inner, deriveSealingKeys([NEW]))
  await store.set('sess:victim', 'secret', 60_000)
  await inner.set('sess:attacker', (await inner.get('sess:victim')) ?? '', 60_000)
  t.equal(await store.get('sess:attacker'), undefined)
})

t.test('rotation: new writes use the newest key, older keys still open, dropped keys do not', async (t) => {
  const inner = new MemoryKeyValueStore()
  t.teardown(() => inner.close())
  await new SealedKeyValueStore(inner, deriveSealingKeys([OLD])).set('k', 'written-with-old', 60_000)
  const rotated = new SealedKeyValueStore(inner, deriveSealingKeys([NEW, OLD]))
  t.equal(await rotated.get('k'), 'written-with-old')
  await rotated.set('k2', 'written-with-new', 60_000)
  t.equal((await inner.get('k2'))?.split('.')[1], deriveSealingKeys([NEW])[0]?.id)
  const dropped = new SealedKeyValueStore(inner, deriveSealingKeys([NEW]))
  t.equal(await dropped.get('k'), undefined)
  t.equal(await dropped.get('k2'), 'written-with-new')
})

t.test('tampered or garbage envelopes read as absent', async (t) => {
  const inner = new MemoryKeyValueStore()
  t.teardown(() => inner.close())
  const store = new SealedKeyValueStore(inner, deriveSealingKeys([NEW]))
  await store.set('k', 'value', 60_000)
  const sealed = (await inner.get('k')) ?? ''
  const parts = sealed.split('.')
  const flip = (s: string) => (s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`)
  const variants = [
    [parts[0], parts[1], parts[2], flip(parts[3] ?? ''), parts[4]].join('.'),
    [parts[0], parts[1], parts[2], parts[3], flip(parts[4] ?? '')].join('.'),
    [parts[0], parts[1], parts[2], parts[3], (parts[4] ?? '').slice(0, 4)].join('.'),
    [parts[0], 'unknownkid', parts[2], parts[3], parts[4]].join('.'),
    `${sealed}.extra`,
    'v2.x.y.z.w',
    '',
    '{"auth":{}}',
  ]
  for (const variant of variants) {
    await inner.set('k', variant, 60_000)
    t.equal(await store.get('k'), undefined, variant.slice(0, 30))
  }
})

t.test('each map field is sealed, bound to its map and its field', async (t) => {
  const inner = new MemoryKeyValueStore()
  t.teardown(() => inner.close())
  const store = new SealedKeyValueStore(inner, deriveSealingKeys([NEW]))
  await store.mapSet('member:m-1', 'vault-a', 'session-id-in-clear', 60_000)
  const sealed = (await inner.mapGetAll('member:m-1'))['vault-a'] ?? ''
  t.notMatch(sealed, /session-id-in-clear/)
  await inner.mapSet('member:m-1', 'vault-b', sealed, 60_000)
  await inner.mapSet('member:m-2', 'vault-a', sealed, 60_000)
  t.same(
    { ...(await store.mapGetAll('member:m-1')) },
    { 'vault-a': 'session-id-in-clear' },
    'not under another field',
  )
  t.same({ ...(await store.mapGetAll('member:m-2')) }, {}, 'not under another map')
})
