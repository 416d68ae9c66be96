import { randomBytes } from 'node:crypto'
import type { AccountToken } from '../epcc/client.js'
import type { KeyValueStore } from './kv.js'

/** The account tokens of one session, kept apart from the session record that every request reads. */
export interface VaultEntry {
  tokens: AccountToken[]
}

/** Tokens of accounts found beyond the first page are kept too, up to this many in all. */
export const MAX_VAULT_TOKENS = 200

/** Parsed vaults kept for reuse (see `get`); a vault of 100 tokens is 80 KB of JSON. */
const PARSED_VAULTS = 1024

export class TokenVault {
  private readonly parsed = new Map<string, { raw: string; entry: VaultEntry }>()

  constructor(private readonly kv: KeyValueStore) {}

  static newId(): string {
    return randomBytes(24).toString('base64url')
  }

  /**
   * The session's tokens as the store holds them now. The same stored text parses to the same (frozen)
   * entry, so a proxied call reads its token without parsing all of them again.
   */
  async get(vaultId: string): Promise<VaultEntry | undefined> {
    const raw = await this.kv.get(key(vaultId))
    if (raw === undefined) {
      this.parsed.delete(vaultId)
      return undefined
    }
    const known = this.parsed.get(vaultId)
    if (known?.raw === raw) return known.entry
    let entry: VaultEntry
    try {
      entry = deepFreeze(JSON.parse(raw) as VaultEntry)
    } catch {
      return undefined
    }
    this.parsed.delete(vaultId)
    this.parsed.set(vaultId, { raw, entry })
    if (this.parsed.size > PARSED_VAULTS) this.parsed.delete(this.parsed.keys().next().value as string)
    return entry
  }

  /** Stores the tokens of a new session. */
  async put(vaultId: string, entry: VaultEntry, ttlMs: number): Promise<void> {
    this.parsed.delete(vaultId)
    await this.kv.set(key(vaultId), JSON.stringify(entry), ttlMs)
  }

  /**
   * Writes the tokens again only while the vault exists: a renewal that finishes after its session ended
   * (logout, expiry, revocation) puts nothing back. True when written.
   */
  update(vaultId: string, entry: VaultEntry, ttlMs: number): Promise<boolean> {
    this.parsed.delete(vaultId)
    return this.kv.update(key(vaultId), JSON.stringify(entry), ttlMs)
  }

  /** Moves the vault's expiry with its session's deadline. */
  expire(vaultId: string, ttlMs: number): Promise<boolean> {
    return this.kv.expire(key(vaultId), ttlMs)
  }

  async delete(vaultId: string): Promise<void> {
    this.parsed.delete(vaultId)
    await this.kv.delete(key(vaultId))
  }
}

function key(vaultId: string): string {
  return `vault:${vaultId}`
}

/** Entries are shared between requests: none may change one. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
