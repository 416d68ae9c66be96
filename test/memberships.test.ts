import { Redis } from 'ioredis'
import t from 'tap'
import { RedisKeyValueStore } from '../src/session/redis.js'
import { api, cookieHost, signedIn, switchAccount } from './support/flows.js'
import { startStack } from './support/stack.js'

const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379'
// Our own key prefix: other test files use the same Redis at the same time.
const PREFIX = `test-memberships:${process.pid}:`
const TOKENS = ['POST', '/v2/account-members/tokens'] as const

/** Bytes Redis holds for the session record and for its token vault (found as the other new key). */
async function storedBytes(
  sessionId: string,
  before: Set<string>,
): Promise<{ record: number; vault: number }> {
  const redis = new Redis(REDIS_URL)
  try {
    const record = await redis.strlen(`${PREFIX}sess:${sessionId}`)
    const vaults = (await redis.keys(`${PREFIX}vault:*`)).filter((k) => !before.has(k))
    const vault = vaults.length === 1 && vaults[0] ? await redis.strlen(vaults[0]) : -1
    return { record, vault }
  } finally {
    redis.disconnect()
  }
}

async function vaultKeys(): Promise<Set<string>> {
  const redis = new Redis(REDIS_URL)
  try {
    return new Set(await redis.keys(`${PREFIX}vault:*`))
  } finally {
    redis.disconnect()
  }
}

t.test('a member with 10,000 accounts', async (t) => {
  const stack = await startStack(t, { kv: new RedisKeyValueStore(REDIS_URL, { prefix: PREFIX }) })
  const sizes: Record<number, { record: number; vault: number }> = {}

  for (const count of [1, 100, 10_000]) {
    const before = await vaultKeys()
    stack.sim.clearLog()
    const { browser, member } = await signedIn(stack, count)
    const cookie = decodeURIComponent(browser.cookie(cookieHost(stack), 'epcc-bff') ?? '')
    sizes[count] = await storedBytes(cookie.split('.')[0] ?? '', before)
    t.equal(stack.sim.calls(...TOKENS).length, 1, `${count}: one token call at login`)
    t.ok(stack.sim.log.length <= 3, `${count}: ${stack.sim.log.length} EPCC calls in all at login`)

    stack.sim.clearLog()
    const session = await api(stack, browser, '/session')
    const body = (await session.json()) as { accountCount: number; activeAccount: { id: string } }
    t.equal(body.accountCount, count)
    t.equal(body.activeAccount.id, member.accounts[0]?.id)
    t.equal(stack.sim.log.length, 0, `${count}: GET /session makes no EPCC call`)
  }
  t.comment(`stored bytes per session (Redis): ${JSON.stringify(sizes)}`)
  const records = Object.values(sizes).map((s) => s.record)
  t.ok(
    Math.max(...records) - Math.min(...records) < 64,
    'the session record is the same size for 1 or 10,000 accounts',
  )
  t.equal(sizes[10_000]?.vault, sizes[100]?.vault, 'the token vault holds at most the first 100 tokens')

  t.test('GET /session/accounts pages through all 10,000', async (t) => {
    const { browser, member } = await signedIn(stack, 10_000)
    for (const offset of [0, 100, 5_000, 9_950]) {
      const response = await api(stack, browser, `/session/accounts?page[offset]=${offset}&page[limit]=50`)
      const page = (await response.json()) as {
        data: Array<{ id: string }>
        meta: { results: { total: number } }
      }
      t.same(
        page.data.map((a) => a.id),
        member.accounts.slice(offset, offset + 50).map((a) => a.id),
        `offset ${offset}`,
      )
      t.equal(page.meta.results.total, 10_000)
    }
  })

  t.test('switching to an account just listed far beyond the first page costs one EPCC call', async (t) => {
    const { browser, member } = await signedIn(stack, 10_000)
    await api(stack, browser, '/session/accounts?page[offset]=9950&page[limit]=50')
    stack.sim.clearLog()
    const target = member.accounts[9_990]
    const response = await switchAccount(stack, browser, target?.id)
    t.equal(response.status, 200)
    t.equal(((await response.json()) as { activeAccount: { id: string } }).activeAccount.id, target?.id)
    t.equal(stack.sim.calls(...TOKENS).length, 1)
  })

  t.test('switching to any account works without listing it first', async (t) => {
    const { browser, member } = await signedIn(stack, 10_000)
    const target = member.accounts[7_777]
    const response = await switchAccount(stack, browser, target?.id)
    t.equal(response.status, 200)
    const session = await api(stack, browser, '/session')
    t.equal(((await session.json()) as { activeAccount: { id: string } }).activeAccount.id, target?.id)
  })
})
