import { randomBytes } from 'node:crypto'
import { LOGIN_KEY_PREFIX, LOGIN_TTL_MS } from '../login.js'
import type { KeyValueStore } from './kv.js'
import { type SessionPolicy, type SignedIn, sessionDeadline } from './model.js'

/** What the store keeps under a session id: the browser's pending logins, and the member once signed in. */
export interface SessionRecord {
  /** `state`s of the logins this browser has pending (the transactions themselves are stored apart). */
  logins?: string[]
  auth?: SignedIn
}

/**
 * What the cookie of a request names: nothing (`none`), a session that lives (`live`), an id that a login or
 * an account switch replaced in the last minutes (`replaced`: the browser already holds the newer cookie), or
 * anything else — logged out, expired, revoked, unknown, badly signed (`ended`).
 */
export type BrowserSession =
  | { state: 'none' }
  | { state: 'live'; id: string; record: SessionRecord }
  | { state: 'replaced'; id: string; replacedBy: string }
  | { state: 'ended' }

export interface Replaced {
  id: string
  record: SessionRecord
}

/** Parsed records kept in memory (about 2 KB each, with the text the store already holds). */
const RECENT_RECORDS = 4096

/** An id replaced by a login or a switch answers `session_replaced` this long, never past its successor. */
export const REPLACED_TTL_MS = 10 * 60_000

/**
 * The session records, every change an explicit, conditional store operation: a record is created once
 * under a fresh id, updated only while it still exists (a request that finishes after the session ended
 * writes nothing), and replaced — at login and at an account switch — by a new id in a way that a
 * concurrent logout always wins. Each record expires at its session's own deadline.
 *
 * Replacing writes, in this order: a marker under the old id naming the new one (`replaced:<old>`), then
 * takes the old record (so of two replacements, or a replacement and a logout, one wins), then writes the
 * new record, then checks that the marker is still its own: a logout that followed the marker in between
 * took it, and the new record is withdrawn. A request with the old id meanwhile finds either the old record
 * or the marker — never nothing — so a stale tab is told `session_replaced`, never that it was signed out.
 */
export class SessionRecords {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly policy: SessionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** 32 random bytes, base64url. */
  static newId(): string {
    return randomBytes(32).toString('base64url')
  }

  /** What `id` names now. */
  async resolve(id: string): Promise<BrowserSession> {
    const record = await this.get(id)
    if (record) return { state: 'live', id, record }
    const replacedBy = await this.kv.get(replacedKey(id))
    return replacedBy ? { state: 'replaced', id, replacedBy } : { state: 'ended' }
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const raw = (await this.kv.get(signedInKey(id))) ?? (await this.kv.get(preLoginKey(id)))
    return raw === undefined ? undefined : this.parsed(raw)
  }

  // Records parsed recently, by their stored text: a browser's requests read the same record again and again
  // until it changes. Frozen, so that no caller can change what another request reads; bounded, the oldest
  // parse going first. Keyed by the whole text, so a changed record is a miss.
  private readonly recent = new Map<string, SessionRecord | undefined>()

  private parsed(raw: string): SessionRecord | undefined {
    if (this.recent.has(raw)) return this.recent.get(raw)
    const record = parse(raw)
    if (this.recent.size >= RECENT_RECORDS) {
      for (const oldest of this.recent.keys()) {
        this.recent.delete(oldest)
        break
      }
    }
    this.recent.set(raw, record)
    return record
  }

  /** Stores a new session; its id. */
  async create(record: SessionRecord): Promise<string> {
    const id = SessionRecords.newId()
    await this.kv.set(recordKey(id, record), JSON.stringify(record), this.ttl(record))
    return id
  }

  /** Writes `record` under `id` only while `id` still lives. True when it was written. */
  update(id: string, record: SessionRecord): Promise<boolean> {
    return this.kv.update(recordKey(id, record), JSON.stringify(record), this.ttl(record))
  }

  /** Removes the record; it, if it was still there (of concurrent callers, one gets it). */
  async take(id: string): Promise<SessionRecord | undefined> {
    const raw = (await this.kv.take(signedInKey(id))) ?? (await this.kv.take(preLoginKey(id)))
    return raw === undefined ? undefined : parse(raw)
  }

  /** Removes the marker that `id` was replaced; the id it named, if any. */
  takeReplacement(id: string): Promise<string | undefined> {
    return this.kv.take(replacedKey(id))
  }

  /**
   * Moves the session under `oldId` to a new id, its record built from the one stored (see the class
   * comment). Otherwise: `replacedBy`, when another login or switch is replacing (or replaced) `oldId` — the
   * marker is claimed by one replacement only; or `ended`, when `oldId` no longer lives or a logout withdrew
   * this replacement on its way — nothing was created, and `ended` is the record taken on the way, if any,
   * whose tokens the caller must end.
   */
  async replace(
    oldId: string,
    build: (old: SessionRecord) => SessionRecord,
  ): Promise<Replaced | { replacedBy: string } | { ended: SessionRecord | undefined }> {
    const id = SessionRecords.newId()
    const marker = replacedKey(oldId)
    if (!(await this.kv.add(marker, id, REPLACED_TTL_MS))) {
      const replacedBy = await this.kv.get(marker)
      return replacedBy ? { replacedBy } : { ended: undefined }
    }
    const old = await this.take(oldId)
    if (!old) {
      await this.kv.delete(marker)
      return { ended: undefined }
    }
    const record = build(old)
    const ttl = this.ttl(record)
    await this.kv.set(recordKey(id, record), JSON.stringify(record), ttl)
    if ((await this.kv.get(marker)) !== id) {
      await this.kv.delete(recordKey(id, record))
      return { ended: old }
    }
    if (ttl < REPLACED_TTL_MS) await this.kv.expire(marker, ttl)
    return { id, record }
  }

  /** How long the store keeps a record: a signed-in one to its session's deadline, a pre-login one as long as a login. */
  ttl(record: SessionRecord): number {
    return record.auth ? sessionDeadline(record.auth, this.policy) - this.now() : LOGIN_TTL_MS
  }
}

/**
 * A signed-in session's record, and a browser's that is not signed in (pending logins only), live under
 * different keys: the memory store gives pending logins a budget of their own, so that no flood of
 * unfinished logins can evict a member's session. A record never changes kind under one id (a login
 * gives the session a new id).
 */
function recordKey(id: string, record: SessionRecord): string {
  return record.auth ? signedInKey(id) : preLoginKey(id)
}

function signedInKey(id: string): string {
  return `sess:${id}`
}

/** Store keys of the records of browsers that are not signed in start with this. */
export const PRE_LOGIN_KEY_PREFIX = 'prelogin:'

function preLoginKey(id: string): string {
  return `${PRE_LOGIN_KEY_PREFIX}${id}`
}

/** The store keys of pending logins: their transactions, and the records of browsers not signed in. */
export function isPendingLoginKey(key: string): boolean {
  return key.startsWith(LOGIN_KEY_PREFIX) || key.startsWith(PRE_LOGIN_KEY_PREFIX)
}

function replacedKey(id: string): string {
  return `replaced:${id}`
}

function parse(raw: string): SessionRecord | undefined {
  try {
    const value = JSON.parse(raw) as { logins?: unknown; auth?: unknown } | null
    if (!value || typeof value !== 'object') return undefined
    const record: SessionRecord = {}
    if (Array.isArray(value.logins)) record.logins = value.logins.filter((s) => typeof s === 'string')
    // Records written by earlier versions kept the signed-in state as a JSON string of its own.
    const auth = typeof value.auth === 'string' ? JSON.parse(value.auth) : value.auth
    if (auth && typeof auth === 'object') record.auth = auth as SignedIn
    return deepFreeze(record)
  } catch {
    return undefined
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}
