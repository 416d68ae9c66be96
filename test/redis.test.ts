import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort } from '../dev/net.js'
import { StoreUnavailableError } from '../src/session/kv.js'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { storeContract } from './support/store-contract.js'

// Redis tests never skip: CI starts Redis (.ci/run), and a missing server must fail the run.
export const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'

storeContract(t, 'redis', async () => new RedisKeyValueStore(REDIS_URL, { prefix: `test:${process.pid}:` }))

/** A throw-away redis-server on its own port, so the test can stop and restart it. */
async function ownRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  )
  for (let i = 0; i < 50; i++) {
    const probe = new RedisKeyValueStore(`redis://127.0.0.1:${port}`)
    const up = await probe.ping().then(
      () => true,
      () => false,
    )
    await probe.close()
    if (up) return child
    await sleep(100)
  }
  throw new Error('redis-server did not start')
}

t.test('while Redis is down the store fails fast, and it recovers by itself', async (t) => {
  const port = await freePort()
  let server = await ownRedis(port)
  t.teardown(() => server.kill('SIGKILL'))
  const store = new RedisKeyValueStore(`redis://127.0.0.1:${port}`, { onError: () => {} })
  t.teardown(() => store.close())
  await store.set('k', 'v', 60_000)
  t.equal(await store.get('k'), 'v')

  server.kill('SIGKILL')
  await new Promise((resolve) => server.once('exit', resolve))
  for (let i = 0; i < 3; i++) {
    const started = Date.now()
    const error = await store.get('k').catch((err: unknown) => err)
    t.type(error, StoreUnavailableError)
    t.ok(Date.now() - started < 1000, 'fails in under a second')
  }

  server = await ownRedis(port)
  let recovered = false
  for (let i = 0; i < 40 && !recovered; i++) {
    recovered = await store.ping().then(
      () => true,
      () => false,
    )
    if (!recovered) await sleep(100)
  }
  t.ok(recovered, 'answers again once Redis is back, without a new client')
  await store.set('k', 'again', 60_000)
  t.equal(await store.get('k'), 'again')
})
