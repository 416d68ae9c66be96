import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import type { KeyValueStore } from './kv.js'

interface SealingKey {
  id: string
  key: Buffer
}

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
// Fixed salt: the secrets are already high-entropy; HKDF separates this use from cookie signing.
const SALT = Buffer.from('epcc-oidc-bff/store-encryption')

/**
 * AES-256-GCM keys derived from the `SESSION_SECRET` entries with HKDF-SHA256: the first seals, all open,
 * so rotating the secret list rotates these keys too. The key id is derived separately and reveals nothing
 * of the key.
 */
export function deriveSealingKeys(secrets: readonly string[]): SealingKey[] {
  return secrets.map((secret) => ({
    id: Buffer.from(hkdfSync('sha256', secret, SALT, 'key-id', 6)).toString('base64url'),
    key: Buffer.from(hkdfSync('sha256', secret, SALT, 'aes-256-gcm', 32)),
  }))
}

/**
 * Values opened recently, by store key, each with the envelope it came from: a read whose envelope is the
 * very one opened before gets the same plaintext without decoding and decrypting it again (a vault of 100
 * tokens is 80 KB: about 0.3 ms per proxied call). It is used only while the store still holds that exact
 * envelope, so it never answers for a value the store no longer holds; it lives in this process only
 * (every store, memory or Redis, still holds sealed values), and it is bounded.
 */
class OpenedValues {
  private readonly entries = new Map<string, { sealed: string; value: string }>()
  private chars = 0

  constructor(
    private readonly maxEntries = 4096,
    private readonly maxChars = 16 * 1024 * 1024,
  ) {}

  get(key: string, sealed: string): string | undefined {
    const hit = this.entries.get(key)
    return hit?.sealed === sealed ? hit.value : undefined
  }

  set(key: string, sealed: string, value: string): void {
    this.delete(key)
    const size = sealed.length + value.length
    if (size > this.maxChars / 16) return
    this.entries.set(key, { sealed, value })
    this.chars += size
    // A Map iterates in insertion order: the oldest entries go first.
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxChars) break
      this.delete(oldest)
    }
  }

  delete(key: string): void {
    const hit = this.entries.get(key)
    if (!hit) return
    this.entries.delete(key)
    this.chars -= hit.sealed.length + hit.value.length
  }

  clear(): void {
    this.entries.clear()
    this.chars = 0
  }
}

/**
 * Every value encrypted at rest, in both stores: AES-256-GCM, a fresh random IV per write, the key id in
 * the envelope `v1.<kid>.<iv>.<ciphertext>.<tag>`, and the record's own key (which carries the session id,
 * the login `state` or the vault id) as associated data, so a ciphertext copied under another key does not
 * open. A value that does not open reads as absent: no session, never a 500.
 */
export class SealedKeyValueStore implements KeyValueStore {
  private readonly byId: Map<string, Buffer>
  private readonly current: SealingKey
  private readonly opened = new OpenedValues()

  constructor(
    private readonly inner: KeyValueStore,
    keys: SealingKey[],
  ) {
    const [current] = keys
    if (!current) throw new Error('at least one sealing key is required')
    this.current = current
    this.byId = new Map(keys.map((k) => [k.id, k.key]))
  }

  async get(key: string): Promise<string | undefined> {
    const sealed = await this.inner.get(key)
    if (sealed === undefined) {
      this.opened.delete(key)
      return undefined
    }
    const known = this.opened.get(key, sealed)
    if (known !== undefined) return known
    const value = this.open(key, sealed)
    if (value !== undefined) this.opened.set(key, sealed, value)
    return value
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.opened.delete(key)
    const sealed = this.seal(key, value)
    await this.inner.set(key, sealed, ttlMs)
    if (ttlMs > 0) this.opened.set(key, sealed, value)
  }

  async update(key: string, value: string, ttlMs: number): Promise<boolean> {
    this.opened.delete(key)
    const sealed = this.seal(key, value)
    const written = await this.inner.update(key, sealed, ttlMs)
    if (written && ttlMs > 0) this.opened.set(key, sealed, value)
    return written
  }

  expire(key: string, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) this.opened.delete(key)
    return this.inner.expire(key, ttlMs)
  }

  async take(key: string): Promise<string | undefined> {
    this.opened.delete(key)
    const sealed = await this.inner.take(key)
    return sealed === undefined ? undefined : this.open(key, sealed)
  }

  delete(key: string): Promise<void> {
    this.opened.delete(key)
    return this.inner.delete(key)
  }

  async add(key: string, value: string, ttlMs: number): Promise<boolean> {
    this.opened.delete(key)
    return this.inner.add(key, this.seal(key, value), ttlMs)
  }

  // Lock values are random owner ids, not secrets: kept in clear so that they can be compared.
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.inner.setIfAbsent(key, value, ttlMs)
  }

  deleteIfEquals(key: string, value: string): Promise<void> {
    return this.inner.deleteIfEquals(key, value)
  }

  // Each field sealed on its own, bound to its map and its field: a value copied to another does not open.
  mapSet(key: string, field: string, value: string, ttlMs: number): Promise<void> {
    return this.inner.mapSet(key, field, this.seal(fieldAad(key, field), value), ttlMs)
  }

  mapUpdate(key: string, field: string, value: string, ttlMs: number): Promise<boolean> {
    return this.inner.mapUpdate(key, field, this.seal(fieldAad(key, field), value), ttlMs)
  }

  mapDelete(key: string, field: string): Promise<void> {
    return this.inner.mapDelete(key, field)
  }

  async mapGetAll(key: string): Promise<Record<string, string>> {
    const opened: Record<string, string> = Object.create(null)
    for (const [field, sealed] of Object.entries(await this.inner.mapGetAll(key))) {
      const value = this.open(fieldAad(key, field), sealed)
      if (value !== undefined) opened[field] = value
    }
    return opened
  }

  ping(): Promise<void> {
    return this.inner.ping()
  }

  close(): Promise<void> {
    this.opened.clear()
    return this.inner.close()
  }

  seal(key: string, value: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(Buffer.from(key))
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()])
    const tag = cipher.getAuthTag()
    return [
      VERSION,
      this.current.id,
      iv.toString('base64url'),
      ciphertext.toString('base64url'),
      tag.toString('base64url'),
    ].join('.')
  }

  open(key: string, sealed: string): string | undefined {
    const [version, kid, iv, ciphertext, tag, extra] = sealed.split('.')
    if (version !== VERSION || !kid || !iv || ciphertext === undefined || !tag || extra !== undefined)
      return undefined
    const aesKey = this.byId.get(kid)
    if (!aesKey) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', aesKey, Buffer.from(iv, 'base64url'), {
        authTagLength: TAG_BYTES,
      })
      decipher.setAAD(Buffer.from(key))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, 'base64url')),
        decipher.final(),
      ]).toString('utf8')
    } catch {
      return undefined
    }
  }
}

/** The associated data of one map field; the key's length first, so no two (key, field) pairs share it. */
function fieldAad(key: string, field: string): string {
  return `${key.length}:${key}#${field}`
}
