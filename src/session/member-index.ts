import type { KeyValueStore } from './kv.js'
import { type SessionPolicy, type SignedIn, sessionDeadline } from './model.js'
import type { SessionRecord, SessionRecords } from './records.js'

/** What the index keeps of one session. The session id stays in the store: it never leaves the server. */
interface IndexEntry {
  sid: string
  createdAt: number
  lastUsedAt: number
  client: string
  expiresAt: number
}

type Found = { state: 'live'; id: string } | { state: 'ended' } | { state: 'moving' }
const ENDED: Found = { state: 'ended' }
const MOVING: Found = { state: 'moving' }

/** One live session of a member, as a member or an operator may see it (no id, no token). */
export interface MemberDevice {
  /** The session's token vault id: stable across account switches; server-side only. */
  vaultId: string
  createdAt: string
  lastUsedAt: string
  client: string
}

/** Ends what a revoked session holds besides its record: its tokens and pending logins. */
export type EndRevoked = (vaultId: string, record: SessionRecord | undefined) => Promise<void>

/**
 * The live sessions of each member, so that they can be listed and ended together — from the member's own
 * browser ("sign out everywhere") or by an operator — on every replica. One map per member in the store,
 * `member:<memberId>`, one field per session keyed by its vault id (which an account switch keeps) naming
 * the current session id; the map expires with the last of its sessions. Login adds, every save of the
 * session (touch, renewal, switch) updates only while the field is there, and every end removes. Reading
 * drops, lazily, any field whose session ended without passing by here.
 */
export class MemberSessionIndex {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly records: SessionRecords,
    private readonly policy: SessionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Lists a new session of `auth.member` under `sid`. */
  async add(auth: SignedIn, sid: string): Promise<void> {
    const { entry, ttl } = this.entryOf(auth, sid)
    await this.kv.mapSet(memberKey(auth.member.id), auth.vaultId, JSON.stringify(entry), ttl)
  }

  /**
   * Records the session's current id and deadline, only while it is still listed: a request that finishes
   * after the session was revoked or ended does not list it again.
   */
  async update(auth: SignedIn, sid: string): Promise<void> {
    const { entry, ttl } = this.entryOf(auth, sid)
    await this.kv.mapUpdate(memberKey(auth.member.id), auth.vaultId, JSON.stringify(entry), ttl)
  }

  async remove(auth: SignedIn): Promise<void> {
    await this.kv.mapDelete(memberKey(auth.member.id), auth.vaultId)
  }

  /** The member's live sessions, oldest first. Fields of sessions that ended are removed on the way. */
  async list(memberId: string): Promise<MemberDevice[]> {
    const key = memberKey(memberId)
    // Each session is looked up at once: a member with many browsers costs one round trip, not one each.
    const looked = await Promise.all(
      Object.entries(await this.kv.mapGetAll(key)).map(async ([vaultId, raw]) => {
        const entry = parseEntry(raw)
        const found = entry && entry.expiresAt > this.now() ? await this.find(entry.sid, vaultId) : ENDED
        if (found === ENDED) await this.kv.mapDelete(key, vaultId)
        // A session in the middle of a switch (its new id not written yet) stays indexed, but is not shown.
        return entry && found.state === 'live' ? { vaultId, entry } : undefined
      }),
    )
    return looked
      .filter((l) => l !== undefined)
      .sort((a, b) => a.entry.createdAt - b.entry.createdAt)
      .map(({ vaultId, entry }) => ({
        vaultId,
        createdAt: new Date(entry.createdAt).toISOString(),
        lastUsedAt: new Date(entry.lastUsedAt).toISOString(),
        client: entry.client,
      }))
  }

  /**
   * Ends every session of the member: each record is taken (its next request, on any replica, finds nothing
   * and is told `session_expired`), `end` deletes its tokens and pending logins — by vault id, so a session
   * that switched account on the way loses its tokens too — and the map goes. The number of sessions ended.
   */
  async revoke(memberId: string, end: EndRevoked): Promise<number> {
    const key = memberKey(memberId)
    let revoked = 0
    for (const [vaultId, raw] of Object.entries(await this.kv.mapGetAll(key))) {
      if (await this.endOne(key, vaultId, parseEntry(raw), end)) revoked++
    }
    return revoked
  }

  /**
   * Ends the member's sessions beyond the `max` most recently used, the least recently used first (by
   * `lastUsedAt`, then `createdAt`): a login calls it once its own session is listed, so that no member piles
   * up sessions without bound. Fields of sessions past their deadline are removed on the way. The number of
   * sessions ended.
   */
  async trim(memberId: string, max: number, end: EndRevoked): Promise<number> {
    const key = memberKey(memberId)
    const now = this.now()
    const listed: Array<{ vaultId: string; entry: IndexEntry }> = []
    for (const [vaultId, raw] of Object.entries(await this.kv.mapGetAll(key))) {
      const entry = parseEntry(raw)
      if (entry && entry.expiresAt > now) listed.push({ vaultId, entry })
      else await this.kv.mapDelete(key, vaultId)
    }
    if (listed.length <= max) return 0
    listed.sort((a, b) => a.entry.lastUsedAt - b.entry.lastUsedAt || a.entry.createdAt - b.entry.createdAt)
    let ended = 0
    for (const { vaultId, entry } of listed.slice(0, listed.length - max)) {
      if (await this.endOne(key, vaultId, entry, end)) ended++
    }
    return ended
  }

  /** Ends the session `entry` of `vaultId` names and removes its field; true when a live session ended. */
  private async endOne(
    key: string,
    vaultId: string,
    entry: IndexEntry | undefined,
    end: EndRevoked,
  ): Promise<boolean> {
    const record = entry ? await this.takeLive(entry.sid, vaultId) : undefined
    await end(vaultId, record)
    // A switch that was on its way may have written its new record meanwhile: it goes too.
    const late = entry ? await this.takeLive(entry.sid, vaultId) : undefined
    if (late) await end(vaultId, late)
    await this.kv.mapDelete(key, vaultId)
    return record !== undefined || late !== undefined
  }

  /**
   * Takes the record of the session of `vaultId`, following the switches that replaced `sid` (a login's
   * replacement holds another vault and is left alone). A replacement still on its way is withdrawn: its
   * marker is taken (see `SessionRecords.replace`).
   */
  private async takeLive(sid: string, vaultId: string): Promise<SessionRecord | undefined> {
    let id = sid
    let via: string | undefined
    for (let hop = 0; hop < 32; hop++) {
      const session = await this.records.resolve(id)
      if (session.state === 'live')
        return session.record.auth?.vaultId === vaultId ? this.records.take(id) : undefined
      if (session.state !== 'replaced') {
        if (via !== undefined) await this.records.takeReplacement(via)
        return undefined
      }
      via = id
      id = session.replacedBy
    }
    return undefined
  }

  /**
   * The id under which the session of `vaultId` lives now, following a login or switch that replaced `sid`:
   * `ended` when it does not live, `moving` when a replacement is on its way (its new record not written).
   */
  private async find(sid: string, vaultId: string): Promise<Found> {
    let id = sid
    for (let hop = 0; hop < 3; hop++) {
      const session = await this.records.resolve(id)
      if (session.state === 'live')
        return session.record.auth?.vaultId === vaultId ? { state: 'live', id } : ENDED
      if (session.state !== 'replaced') return hop === 0 ? ENDED : MOVING
      id = session.replacedBy
    }
    return MOVING
  }

  private entryOf(auth: SignedIn, sid: string): { entry: IndexEntry; ttl: number } {
    const expiresAt = sessionDeadline(auth, this.policy)
    const entry = {
      sid,
      createdAt: auth.createdAt,
      lastUsedAt: auth.lastSeenAt,
      client: auth.client ?? 'Unknown client',
      expiresAt,
    }
    return { entry, ttl: expiresAt - this.now() }
  }
}

/** Member ids are UUIDs, which do not depend on letter case: `A…` and `a…` name one member. */
function memberKey(memberId: string): string {
  return `member:${memberId.toLowerCase()}`
}

function parseEntry(raw: string): IndexEntry | undefined {
  try {
    const value = JSON.parse(raw) as Partial<IndexEntry> | null
    if (
      value &&
      typeof value.sid === 'string' &&
      typeof value.createdAt === 'number' &&
      typeof value.lastUsedAt === 'number' &&
      typeof value.expiresAt === 'number'
    ) {
      return {
        ...value,
        client: typeof value.client === 'string' ? value.client : 'Unknown client',
      } as IndexEntry
    }
  } catch {}
  return undefined
}
