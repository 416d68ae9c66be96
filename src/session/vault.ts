import { randomBytes } from 'node:crypto'
import type { AccountToken } from '../epcc/client.js'
import type { KeyValueStore } from './kv.js'

/** The account tokens of one session, kept apart from the session record that every request reads. */
export interface VaultEntry {
  tokens: AccountToken[]
}

/** Tokens of accounts found beyond the first page are kept too, up to this many in all. */
export const MAX_VAULT_TOKENS = 200

export class TokenVault {
  constructor(private readonly kv: KeyValueStore) {}

  static newId(): string {
    return randomBytes(24).toString('base64url')
  }

  async get(vaultId: string): Promise<VaultEntry | undefined> {
    const raw = await this.kv.get(key(vaultId))
    if (raw === undefined) return undefined
    try {
      return JSON.parse(raw) as VaultEntry
    } catch {
      return undefined
    }
  }

  async put(vaultId: string, entry: VaultEntry, ttlMs: number): Promise<void> {
    await this.kv.set(key(vaultId), JSON.stringify(entry), ttlMs)
  }

  async delete(vaultId: string): Promise<void> {
    await this.kv.delete(key(vaultId))
  }
}

function key(vaultId: string): string {
  return `vault:${vaultId}`
}
