/**
 * The storage under sessions, login transactions and the token vault: string values with a TTL.
 * One process keeps it in memory; several replicas share Redis (contract §1 `REDIS_URL`).
 */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>
  set(key: string, value: string, ttlMs: number): Promise<void>
  /**
   * Writes `key` only while it still exists (Redis `SET … XX`): a request that finishes after a logout, a
   * switch or an expiry ended what it read writes nothing. True when the value was written.
   */
  update(key: string, value: string, ttlMs: number): Promise<boolean>
  /** Moves the expiry of `key`, only while it exists. True when it existed. */
  expire(key: string, ttlMs: number): Promise<boolean>
  /** Returns the value and removes it in one step: at most one caller ever gets it. */
  take(key: string): Promise<string | undefined>
  delete(key: string): Promise<void>
  /** Stores `value` under `key` only when `key` is absent (sealed like every value). True when this call stored it. */
  add(key: string, value: string, ttlMs: number): Promise<boolean>
  /** Sets `key` only when it is absent: a lock with a lease, its value kept in clear. True when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>
  /** Deletes `key` only while it still holds `value` (releasing one's own lock, never a successor's). */
  deleteIfEquals(key: string, value: string): Promise<void>
  /**
   * Sets one field of the map under `key` and keeps the map at least `ttlMs` longer (never shortens it): a
   * map lives as long as the longest-lived thing it lists. One step, one key.
   */
  mapSet(key: string, field: string, value: string, ttlMs: number): Promise<void>
  /** `mapSet`, only while `field` is still in the map: a late writer does not bring back a removed field. */
  mapUpdate(key: string, field: string, value: string, ttlMs: number): Promise<boolean>
  /** Removes one field; the map goes when its last field does. */
  mapDelete(key: string, field: string): Promise<void>
  /** Every field of the map (empty when there is none). */
  mapGetAll(key: string): Promise<Record<string, string>>
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>
  close(): Promise<void>
}

/** The store could not be reached or did not answer: the request gets `503 session_store_unavailable`. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('session store unavailable', { cause })
    this.name = 'StoreUnavailableError'
  }
}

interface Entry {
  /** A string, or the fields of a map (kept as a Map: each field set or removed in constant time). */
  value: string | Map<string, string>
  /** Characters held: the string's, or the fields' and their values'. */
  size: number
  expiresAt: number
}

/** Entries that share one upper bound on the characters they hold; the least recently written go first. */
class Budget {
  // A Map iterates in insertion order; re-inserting on write keeps the oldest write first for eviction.
  readonly entries = new Map<string, Entry>()
  chars = 0

  constructor(readonly maxChars: number) {}

  add(key: string, entry: Entry): void {
    this.entries.set(key, entry)
    this.chars += key.length + entry.size
    for (const [oldest] of this.entries) {
      if (this.chars <= this.maxChars) break
      this.remove(oldest)
    }
  }

  remove(key: string): void {
    const entry = this.entries.get(key)
    if (!entry) return
    this.entries.delete(key)
    this.chars -= key.length + entry.size
  }

  clear(): void {
    this.entries.clear()
    this.chars = 0
  }
}

export interface MemoryStoreOptions {
  /** Upper bound on the characters held (keys + values) by everything but pending logins. */
  maxChars?: number
  /**
   * Keys of pending logins (login transactions, the records of browsers that are not signed in): they have a
   * budget of their own, so that no flood of unfinished logins can evict a member's session or tokens.
   */
  isPending?: (key: string) => boolean
  /** Upper bound on the characters held by pending logins; the oldest pending logins go first. */
  pendingMaxChars?: number
  sweepIntervalMs?: number
  now?: () => number
}

/** The default budgets (docs/limits.md): 256 Mi characters for sessions and vaults, 48 Mi for pending logins. */
export const MEMORY_BUDGETS = { maxChars: 256 * 1024 * 1024, pendingMaxChars: 48 * 1024 * 1024 } as const

/**
 * A bounded in-memory store that expires entries (the @fastify/session default keeps everything forever).
 * Values are strings, as in Redis, so both stores behave the same and no request shares a live object.
 */
export class MemoryKeyValueStore implements KeyValueStore {
  private readonly main: Budget
  private readonly pending: Budget
  private readonly isPending: (key: string) => boolean
  private readonly now: () => number
  private readonly sweeper: NodeJS.Timeout

  constructor(opts: MemoryStoreOptions = {}) {
    this.main = new Budget(opts.maxChars ?? MEMORY_BUDGETS.maxChars)
    this.pending = new Budget(opts.pendingMaxChars ?? MEMORY_BUDGETS.pendingMaxChars)
    this.isPending = opts.isPending ?? (() => false)
    this.now = opts.now ?? Date.now
    this.sweeper = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 30_000)
    this.sweeper.unref()
  }

  get size(): number {
    return this.main.entries.size + this.pending.entries.size
  }

  /** Characters held (keys + values): by pending logins, and by everything else. */
  get usage(): { chars: number; pendingChars: number } {
    return { chars: this.main.chars, pendingChars: this.pending.chars }
  }

  /** Live entries whose key starts with `prefix` (for metrics; walks the whole store). */
  count(prefix: string): number {
    const now = this.now()
    let n = 0
    for (const budget of [this.main, this.pending]) {
      for (const [key, entry] of budget.entries) if (entry.expiresAt > now && key.startsWith(prefix)) n++
    }
    return n
  }

  async get(key: string): Promise<string | undefined> {
    return asString(this.live(key))
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const budget = this.budgetOf(key)
    budget.remove(key)
    if (ttlMs > 0) budget.add(key, { value, size: value.length, expiresAt: this.now() + ttlMs })
  }

  async update(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (!this.live(key)) return false
    await this.set(key, value, ttlMs)
    return true
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const entry = this.live(key)
    if (!entry) return false
    if (ttlMs <= 0) this.remove(key)
    else entry.expiresAt = this.now() + ttlMs
    return true
  }

  async take(key: string): Promise<string | undefined> {
    const entry = this.live(key)
    if (entry) this.remove(key)
    return asString(entry)
  }

  async delete(key: string): Promise<void> {
    this.remove(key)
  }

  add(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.setIfAbsent(key, value, ttlMs)
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false
    await this.set(key, value, ttlMs)
    return true
  }

  async deleteIfEquals(key: string, value: string): Promise<void> {
    if (asString(this.live(key)) === value) this.remove(key)
  }

  // A map is a Map of its own in the entry: setting or removing a field costs the same however many the map
  // holds (a member signed in on many browsers). What is read out is a copy: no request shares a live object.
  async mapSet(key: string, field: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return
    const entry = this.live(key)
    const fields = entry?.value instanceof Map ? entry.value : new Map<string, string>()
    const before = fields.get(field)
    fields.set(field, value)
    const size =
      (entry?.value instanceof Map ? entry.size : 0) +
      value.length -
      (before === undefined ? -field.length : before.length)
    const expiresAt = Math.max(entry?.expiresAt ?? 0, this.now() + ttlMs)
    // Written again as a whole entry: the budget counts its new size, and it is now the newest write.
    const budget = this.budgetOf(key)
    budget.remove(key)
    budget.add(key, { value: fields, size, expiresAt })
  }

  async mapUpdate(key: string, field: string, value: string, ttlMs: number): Promise<boolean> {
    const entry = this.live(key)
    if (!(entry?.value instanceof Map) || !entry.value.has(field)) return false
    await this.mapSet(key, field, value, ttlMs)
    return true
  }

  async mapDelete(key: string, field: string): Promise<void> {
    const entry = this.live(key)
    if (!(entry?.value instanceof Map)) return
    const before = entry.value.get(field)
    if (before === undefined) return
    entry.value.delete(field)
    if (entry.value.size === 0) return this.remove(key)
    const budget = this.budgetOf(key)
    budget.remove(key)
    budget.add(key, { ...entry, size: entry.size - field.length - before.length })
  }

  async mapGetAll(key: string): Promise<Record<string, string>> {
    const entry = this.live(key)
    return entry?.value instanceof Map ? Object.fromEntries(entry.value) : {}
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper)
    this.main.clear()
    this.pending.clear()
  }

  private budgetOf(key: string): Budget {
    return this.isPending(key) ? this.pending : this.main
  }

  private live(key: string): Entry | undefined {
    const budget = this.budgetOf(key)
    const entry = budget.entries.get(key)
    if (entry && entry.expiresAt <= this.now()) {
      budget.remove(key)
      return undefined
    }
    return entry
  }

  private remove(key: string): void {
    this.budgetOf(key).remove(key)
  }

  private sweep(): void {
    const now = this.now()
    for (const budget of [this.main, this.pending]) {
      for (const [key, entry] of budget.entries) if (entry.expiresAt <= now) budget.remove(key)
    }
  }
}

/** A string entry's value; a map is not a string (Redis would answer WRONGTYPE). */
function asString(entry: Entry | undefined): string | undefined {
  return typeof entry?.value === 'string' ? entry.value : undefined
}
