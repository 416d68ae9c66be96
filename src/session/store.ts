import { type KeyValueStore, StoreUnavailableError } from './kv.js'
import { recordTtlMs, type SessionPolicy, type SessionRecord } from './model.js'

/**
 * Session records over a `KeyValueStore`. Records expire at the session's own deadline; an unreadable
 * record is no session; a store that does not answer is a `StoreUnavailableError`.
 */
export class SessionRecordStore {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly policy: SessionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    return parse(await unavailableOnError(this.kv.get(key(sessionId))))
  }

  async set(sessionId: string, record: SessionRecord): Promise<void> {
    const ttl = recordTtlMs(record, this.policy, this.now())
    await unavailableOnError(
      ttl > 0 ? this.kv.set(key(sessionId), JSON.stringify(record), ttl) : this.kv.delete(key(sessionId)),
    )
  }

  async destroy(sessionId: string): Promise<void> {
    await unavailableOnError(this.kv.delete(key(sessionId)))
  }
}

/** The store key of a session record. */
export function sessionKey(sessionId: string): string {
  return `sess:${sessionId}`
}
const key = sessionKey

async function unavailableOnError<T>(pending: Promise<T>): Promise<T> {
  try {
    return await pending
  } catch (err) {
    throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err)
  }
}

/** Only the record's own fields: records written by @fastify/session also carried its cookie. */
function parse(raw: string | undefined): SessionRecord | undefined {
  if (raw === undefined) return undefined
  try {
    const value = JSON.parse(raw) as SessionRecord | null
    if (!value || typeof value !== 'object') return undefined
    const record: SessionRecord = {}
    if (Array.isArray(value.logins)) record.logins = value.logins
    if (value.auth && typeof value.auth === 'object') record.auth = value.auth
    return record
  } catch {
    return undefined
  }
}
