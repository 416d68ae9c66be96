import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { KeyValueStore } from './kv.js'

const POLL_MS = 25

/**
 * Runs `work` while holding `key` in the store (SET NX with a lease), so that one replica at a time does it.
 * While another holder has it, `whileWaiting` is asked every few milliseconds whether the result is already
 * there (returning it ends the wait); after `leaseMs` the wait gives up and `work` runs anyway, since a
 * crashed holder's lease has then run out. The lock is released only by its owner.
 */
export async function withLock<T>(
  kv: KeyValueStore,
  key: string,
  leaseMs: number,
  work: () => Promise<T>,
  whileWaiting: () => Promise<T | undefined> = async () => undefined,
): Promise<T> {
  const owner = randomBytes(12).toString('base64url')
  const giveUpAt = Date.now() + leaseMs
  while (!(await kv.setIfAbsent(key, owner, leaseMs))) {
    const done = await whileWaiting()
    if (done !== undefined) return done
    if (Date.now() > giveUpAt) break
    await sleep(POLL_MS)
  }
  try {
    return await work()
  } finally {
    await kv.deleteIfEquals(key, owner).catch(() => {})
  }
}
