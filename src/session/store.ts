import { type KeyValueStore, StoreUnavailableError } from './kv.js'
import { recordTtlMs, type SessionPolicy, type SessionRecord } from './model.js'

type Callback = (err?: unknown) => void

/**
 * The @fastify/session store contract over a `KeyValueStore`. Records expire at the session's own deadline;
 * an unreadable record is no session; a store that does not answer is a `StoreUnavailableError`. Only the
 * record's own fields are stored, not @fastify/session's copy of the cookie options: the cookie is rebuilt
 * from the plugin's options on every request anyway (same lifetime), and every request reads the record.
 */
export class SessionRecordStore<S extends SessionRecord = SessionRecord> {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly policy: SessionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  get(sessionId: string, callback: (err: unknown, session?: S | null) => void): void {
    this.kv.get(key(sessionId)).then(
      (raw) => callback(null, raw === undefined ? null : (parse(raw) as S | null)),
      (err) => callback(new StoreUnavailableError(err)),
    )
  }

  set(sessionId: string, session: S, callback: Callback): void {
    const ttl = recordTtlMs(session, this.policy, this.now())
    const write =
      ttl > 0
        ? this.kv.set(key(sessionId), JSON.stringify(recordOf(session)), ttl)
        : this.kv.delete(key(sessionId))
    write.then(
      () => callback(),
      (err) => callback(new StoreUnavailableError(err)),
    )
  }

  destroy(sessionId: string, callback: Callback): void {
    this.kv.delete(key(sessionId)).then(
      () => callback(),
      (err) => callback(new StoreUnavailableError(err)),
    )
  }
}

/** The store key of a session record. */
export function sessionKey(sessionId: string): string {
  return `sess:${sessionId}`
}
const key = sessionKey

function recordOf(session: SessionRecord): SessionRecord {
  const record: SessionRecord = {}
  if (session.logins !== undefined) record.logins = session.logins
  if (session.auth !== undefined) record.auth = session.auth
  return record
}

function parse(raw: string): SessionRecord | null {
  try {
    const value: unknown = JSON.parse(raw)
    // Records written before carried the cookie options too: those are left out here as well.
    return value && typeof value === 'object' ? recordOf(value as SessionRecord) : null
  } catch {
    return null
  }
}
