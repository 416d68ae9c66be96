import { randomBytes } from 'node:crypto'
import type { SessionRecord, SignedIn } from './model.js'
import type { SessionRecordStore } from './store.js'

/** A new session id: 192 random bits, base64url (what @fastify/session issued, so old cookies still work). */
export function newSessionId(): string {
  return randomBytes(24).toString('base64url')
}

/**
 * This request's view of the browser's session (`request.session`): the record is read once, and every
 * assignment to a field marks it changed, so a request that assigns nothing writes nothing and sets no
 * cookie, with no serializing or hashing of the record to find that out. Fields are therefore replaced,
 * never mutated in place.
 */
export class RequestSession {
  #id: string | undefined
  #auth: SignedIn | undefined
  #logins: string[] | undefined
  #changed = false
  #destroyed = false

  /** `loaded` is the record the cookie named, with its id; none for a browser without a live session. */
  constructor(
    private readonly store: SessionRecordStore,
    loaded?: { id: string; record: SessionRecord },
  ) {
    this.#id = loaded?.id
    this.#auth = loaded?.record.auth
    this.#logins = loaded?.record.logins
  }

  get auth(): SignedIn | undefined {
    return this.#auth
  }

  set auth(value: SignedIn | undefined) {
    this.#auth = value
    this.#changed = true
  }

  /** `state`s of the logins this browser has pending. */
  get logins(): string[] | undefined {
    return this.#logins
  }

  set logins(value: string[] | undefined) {
    this.#logins = value
    this.#changed = true
  }

  /** The session id; a new session gets one when first asked (or when first saved). */
  get sessionId(): string {
    this.#id ??= newSessionId()
    return this.#id
  }

  /** True when the record must be written (and the cookie set) at the end of the request. */
  get isChanged(): boolean {
    return this.#changed && !this.#destroyed
  }

  /** Write the record again even though no field changed (to seal it and sign its cookie with a newer key). */
  markChanged(): void {
    this.#changed = true
  }

  /**
   * A new, empty session under a new id; the record under the old id is deleted at once, so that the
   * previous id resolves to nothing (contract §2). The new record is written at the end of the request.
   */
  async regenerate(): Promise<void> {
    if (this.#id !== undefined) await this.store.destroy(this.#id)
    this.#id = newSessionId()
    this.#auth = undefined
    this.#logins = undefined
    this.#changed = true
    this.#destroyed = false
  }

  /** Deletes the record; nothing is written for this request any more. */
  async destroy(): Promise<void> {
    if (this.#id !== undefined) await this.store.destroy(this.#id)
    this.#auth = undefined
    this.#logins = undefined
    this.#destroyed = true
  }

  /** What the store keeps. */
  record(): SessionRecord {
    const record: SessionRecord = {}
    if (this.#logins !== undefined) record.logins = this.#logins
    if (this.#auth !== undefined) record.auth = this.#auth
    return record
  }
}
