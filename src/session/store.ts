import { LOGIN_KEY_PREFIX } from '../login.js'
import { type KeyValueStore, StoreUnavailableError } from './kv.js'
import { recordTtlMs, type SessionPolicy, type SessionRecord, type SignedIn } from './model.js'

type Callback = (err?: unknown) => void

/**
 * The @fastify/session store contract over a `KeyValueStore`. Records expire at the session's own deadline;
 * an unreadable record is no session; a store that does not answer is a `StoreUnavailableError`. Only the
 * record's own fields are stored, not @fastify/session's copy of the cookie options: the cookie is rebuilt
 * from the plugin's options on every request anyway (same lifetime), and every request reads the record.
 *
 * The signed-in state is stored as its own JSON string inside the record, and the state read back keeps that
 * string as its `toJSON`: @fastify/session hashes the whole session twice per request to tell whether it
 * changed, and serialising the state is then one string instead of a walk over each of its fields. The state
 * is frozen, so the string cannot go stale; a changed state is a new object (a spread), which has no `toJSON`
 * of its own and is serialised in full.
 */
export class SessionRecordStore<S extends SessionRecord = SessionRecord> {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly policy: SessionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  get(sessionId: string, callback: (err: unknown, session?: S | null) => void): void {
    const read = async () =>
      (await this.kv.get(key(sessionId))) ?? (await this.kv.get(preLoginKey(sessionId)))
    read().then(
      (raw) => callback(null, raw === undefined ? null : (parse(raw) as S | null)),
      (err) => callback(new StoreUnavailableError(err)),
    )
  }

  set(sessionId: string, session: S, callback: Callback): void {
    const ttl = recordTtlMs(session, this.policy, this.now())
    // A browser that is not signed in holds pending logins only: its record is kept with them, apart from
    // members' sessions (a record never changes kind under one id: a login gives the session a new id).
    const recordKey = session.auth ? key(sessionId) : preLoginKey(sessionId)
    const write =
      ttl > 0 ? this.kv.set(recordKey, JSON.stringify(recordOf(session)), ttl) : this.kv.delete(recordKey)
    write.then(
      () => callback(),
      (err) => callback(new StoreUnavailableError(err)),
    )
  }

  destroy(sessionId: string, callback: Callback): void {
    Promise.all([this.kv.delete(key(sessionId)), this.kv.delete(preLoginKey(sessionId))]).then(
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

/** Store keys of the records of browsers that are not signed in (pending logins only) start with this. */
export const PRE_LOGIN_KEY_PREFIX = 'prelogin:'
/** The store keys of pending logins: their transactions, and the records of browsers not signed in. */
export function isPendingLoginKey(key: string): boolean {
  return key.startsWith(LOGIN_KEY_PREFIX) || key.startsWith(PRE_LOGIN_KEY_PREFIX)
}
function preLoginKey(sessionId: string): string {
  return `${PRE_LOGIN_KEY_PREFIX}${sessionId}`
}

/** The record as stored: the signed-in state as a JSON string of its own. */
interface StoredRecord {
  logins?: string[]
  auth?: string | SignedIn
}

function recordOf(session: SessionRecord): StoredRecord {
  const record: StoredRecord = {}
  if (session.logins !== undefined) record.logins = session.logins
  if (session.auth !== undefined) record.auth = jsonOf(session.auth)
  return record
}

function parse(raw: string): SessionRecord | null {
  try {
    const value = JSON.parse(raw) as StoredRecord | null
    if (!value || typeof value !== 'object') return null
    // Records written before carried the cookie options, and the state as an object: both still read.
    const record: SessionRecord = {}
    if (value.logins !== undefined) record.logins = value.logins
    if (typeof value.auth === 'string')
      record.auth = withOwnJson(JSON.parse(value.auth) as SignedIn, value.auth)
    else if (value.auth && typeof value.auth === 'object') record.auth = value.auth
    return record
  } catch {
    return null
  }
}

/** The JSON of a state: the string a state read from the store came from, or a new state in full. */
function jsonOf(auth: SignedIn): string {
  const own = (auth as { toJSON?: () => string }).toJSON
  return own ? own() : JSON.stringify(auth)
}

/** `auth` frozen, with `json` (the string it was parsed from) as what it serialises to. */
function withOwnJson(auth: SignedIn, json: string): SignedIn {
  Object.defineProperty(auth, 'toJSON', { value: () => json })
  Object.freeze(auth.member)
  Object.freeze(auth.activeAccount)
  return Object.freeze(auth)
}
