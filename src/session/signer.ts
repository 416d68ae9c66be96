import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto'

export type UnsignResult =
  | { valid: true; renew: boolean; value: string }
  | { valid: false; renew: false; value: null }

const INVALID: UnsignResult = { valid: false, renew: false, value: null }
/** Recent answers kept per direction; a browser's cookie repeats on every request it sends. */
const REMEMBERED = 10_000

/**
 * The session cookie's signature: the session id, a dot, and its HMAC-SHA256 in base64 without padding —
 * @fastify/cookie's `Signer` format, so every cookie it signed stays valid. The first secret signs; every
 * secret verifies, and `renew` says that an older one did. @fastify/session verifies the cookie and signs the
 * id again on every request: both are pure functions of their input, so answers for recent inputs are
 * remembered (bounded) instead of recomputed. Only valid signatures are remembered, so a forged cookie costs
 * a full, constant-time check every time and never takes a place in memory.
 */
export class SessionSigner {
  private readonly keys: KeyObject[]
  private readonly signed = new Map<string, string>()
  private readonly verified = new Map<string, UnsignResult>()

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('at least one secret is required')
    this.keys = secrets.map((secret) => createSecretKey(Buffer.from(secret)))
  }

  sign(value: string): string {
    let signed = this.signed.get(value)
    if (signed === undefined) {
      signed = `${value}.${mac(this.keys[0]!, value)}`
      remember(this.signed, value, signed)
    }
    return signed
  }

  unsign(input: string): UnsignResult {
    const known = this.verified.get(input)
    if (known) return known
    const dot = input.lastIndexOf('.')
    if (dot <= 0 || dot === input.length - 1) return INVALID
    const value = input.slice(0, dot)
    const actual = Buffer.from(input.slice(dot + 1))
    for (const [i, key] of this.keys.entries()) {
      const expected = Buffer.from(mac(key, value))
      if (expected.length === actual.length && timingSafeEqual(expected, actual)) {
        const result: UnsignResult = { valid: true, renew: i > 0, value }
        remember(this.verified, input, result)
        return result
      }
    }
    return INVALID
  }
}

function mac(key: KeyObject, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64').replace(/=+$/, '')
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  // A Map iterates in insertion order: the oldest answer goes first.
  if (map.size >= REMEMBERED) map.delete(map.keys().next().value as string)
  map.set(key, value)
}
