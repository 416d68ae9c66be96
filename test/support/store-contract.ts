import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { KeyValueStore } from '../../src/session/kv.js'

/** The behaviour every `KeyValueStore` must have; run against each implementation. */
export function storeContract(t: Test, name: string, make: () => Promise<KeyValueStore>): void {
  t.test(`${name}: the store contract`, async (t) => {
    const store = await make()
    t.teardown(() => store.close())
    const k = (s: string) => `contract:${process.pid}:${Math.random().toString(36).slice(2)}:${s}`

    t.test('a value written is read back until it expires', async (t) => {
      const key = k('ttl')
      await store.set(key, 'v1', 300)
      t.equal(await store.get(key), 'v1')
      await sleep(1100)
      t.equal(await store.get(key), undefined, 'gone after its TTL')
    })

    t.test('overwrite replaces the value and its TTL', async (t) => {
      const key = k('overwrite')
      await store.set(key, 'old', 200)
      await store.set(key, 'new', 60_000)
      await sleep(1100)
      t.equal(await store.get(key), 'new')
      await store.delete(key)
    })

    t.test('delete removes; deleting a missing key is fine', async (t) => {
      const key = k('delete')
      await store.set(key, 'v', 60_000)
      await store.delete(key)
      t.equal(await store.get(key), undefined)
      await t.resolves(store.delete(k('never-written')))
    })

    t.test('take hands a value to exactly one of many concurrent callers', async (t) => {
      const key = k('take')
      await store.set(key, 'once', 60_000)
      const results = await Promise.all(Array.from({ length: 20 }, () => store.take(key)))
      t.same(
        results.filter((r) => r !== undefined),
        ['once'],
      )
      t.equal(await store.get(key), undefined)
    })

    t.test('concurrent writes leave one of the written values whole', async (t) => {
      const key = k('race')
      const values = Array.from({ length: 20 }, (_, i) => `value-${i}-${'x'.repeat(i * 100)}`)
      await Promise.all(values.map((v) => store.set(key, v, 60_000)))
      t.ok(values.includes((await store.get(key)) ?? ''))
      await store.delete(key)
    })

    t.test('any string survives a round trip, including garbage', async (t) => {
      const key = k('garbage')
      const garbage = '\u0000\uffff{"not json"\n\r\t 🙂 \\ \u2028'
      await store.set(key, garbage, 60_000)
      t.equal(await store.get(key), garbage)
      await store.delete(key)
    })

    t.test('a zero TTL stores nothing', async (t) => {
      const key = k('zero')
      await store.set(key, 'v', 0)
      t.equal(await store.get(key), undefined)
    })

    t.test('add stores a value under a new key only: one of many concurrent callers wins', async (t) => {
      const key = k('add')
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => store.add(key, `v${i}`, 60_000)))
      t.equal(wins.filter(Boolean).length, 1)
      t.equal(await store.get(key), `v${wins.indexOf(true)}`)
      await store.delete(key)
      t.equal(await store.add(key, 'again', 60_000), true, 'free once deleted')
      await store.delete(key)
    })

    t.test(
      'setIfAbsent is a lock: one of many concurrent callers wins, until released or expired',
      async (t) => {
        const key = k('lock')
        const wins = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.setIfAbsent(key, `owner-${i}`, 300)),
        )
        t.equal(wins.filter(Boolean).length, 1)
        const owner = `owner-${wins.indexOf(true)}`
        await store.deleteIfEquals(key, 'someone-else')
        t.equal(await store.setIfAbsent(key, 'late', 300), false, 'only the owner releases')
        await store.deleteIfEquals(key, owner)
        t.equal(await store.setIfAbsent(key, 'next', 300), true, 'free after release')
        await sleep(1100)
        t.equal(await store.setIfAbsent(key, 'after-lease', 300), true, 'free after the lease')
        await store.deleteIfEquals(key, 'after-lease')
      },
    )

    t.test('update writes only a key that still exists: nothing ended comes back', async (t) => {
      const key = k('update')
      t.equal(await store.update(key, 'resurrected', 60_000), false, 'a missing key is not created')
      t.equal(await store.get(key), undefined)
      await store.set(key, 'v1', 60_000)
      t.equal(await store.update(key, 'v2', 60_000), true)
      t.equal(await store.get(key), 'v2')
      await store.delete(key)
      t.equal(await store.update(key, 'v3', 60_000), false, 'not after a delete')
      t.equal(await store.get(key), undefined)
      await store.set(key, 'v4', 200)
      await sleep(1100)
      t.equal(await store.update(key, 'v5', 60_000), false, 'not after it expired')
      t.equal(await store.get(key), undefined)
    })

    t.test('expire moves the expiry of a key that exists, and of no other', async (t) => {
      const key = k('expire')
      t.equal(await store.expire(key, 60_000), false)
      t.equal(await store.get(key), undefined, 'a missing key is not created')
      await store.set(key, 'v', 60_000)
      t.equal(await store.expire(key, 300), true)
      t.equal(await store.get(key), 'v')
      await sleep(1100)
      t.equal(await store.get(key), undefined, 'gone at the new expiry')
      await store.set(key, 'w', 300)
      t.equal(await store.expire(key, 60_000), true)
      await sleep(1100)
      t.equal(await store.get(key), 'w', 'kept past the old expiry')
      await store.delete(key)
    })

    t.test('a map: fields set, updated only while present, removed; gone with its last field', async (t) => {
      const key = k('map')
      t.same({ ...(await store.mapGetAll(key)) }, {}, 'no map is an empty one')
      t.equal(await store.mapUpdate(key, 'a', 'x', 60_000), false, 'a missing map is not created')
      t.same({ ...(await store.mapGetAll(key)) }, {})
      await store.mapSet(key, 'a', '1', 60_000)
      await store.mapSet(key, 'b', '\u0000🙂{"not json"', 60_000)
      t.same({ ...(await store.mapGetAll(key)) }, { a: '1', b: '\u0000🙂{"not json"' })
      t.equal(await store.mapUpdate(key, 'a', '2', 60_000), true)
      t.equal(await store.mapUpdate(key, 'c', '3', 60_000), false, 'a missing field is not created')
      t.same({ ...(await store.mapGetAll(key)) }, { a: '2', b: '\u0000🙂{"not json"' })
      await store.mapDelete(key, 'a')
      await store.mapDelete(key, 'never-there')
      t.equal(await store.mapUpdate(key, 'a', 'late', 60_000), false, 'a removed field stays removed')
      t.same({ ...(await store.mapGetAll(key)) }, { b: '\u0000🙂{"not json"' })
      await store.mapDelete(key, 'b')
      t.same({ ...(await store.mapGetAll(key)) }, {})
      t.equal(await store.mapUpdate(key, 'b', 'late', 60_000), false, 'the map went with its last field')
    })

    t.test('a map lives as long as its longest-lived field, and no longer', async (t) => {
      const key = k('map-ttl')
      await store.mapSet(key, 'long', 'l', 1500)
      await store.mapSet(key, 'short', 's', 200)
      await sleep(600)
      t.same(
        Object.keys(await store.mapGetAll(key)).sort(),
        ['long', 'short'],
        'a shorter TTL does not shorten it',
      )
      await sleep(1500)
      t.same({ ...(await store.mapGetAll(key)) }, {}, 'gone after the longest TTL')
      await store.mapSet(key, 'f', 'v', 200)
      t.equal(await store.mapUpdate(key, 'f', 'w', 1500), true)
      await sleep(600)
      t.same({ ...(await store.mapGetAll(key)) }, { f: 'w' }, 'an update extends it')
      await store.mapDelete(key, 'f')
    })

    t.test('ping answers', async (t) => {
      await t.resolves(store.ping())
    })
  })
}
