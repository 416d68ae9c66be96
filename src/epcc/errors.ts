/**
 * An EPCC call that did not give us what we asked for. `rejected`: EPCC answered 4xx (not 429) and meant it;
 * `unavailable`: 429, 5xx, a timeout, a reset, or a 2xx body we cannot use.
 * The message names the operation and status only, never a token or code.
 */
export class EpccError extends Error {
  constructor(
    readonly operation: string,
    readonly kind: 'rejected' | 'unavailable',
    readonly status: number | undefined,
    readonly detail: string,
  ) {
    super(`EPCC ${operation} ${kind}${status === undefined ? '' : ` (HTTP ${status})`}: ${detail}`)
    this.name = 'EpccError'
  }
}

export interface EpccErrorEntry {
  status: number | undefined
  title: string
}

/**
 * Reads an EPCC `errors` body. `status` is a number in the guides and a string in the OpenAPI files, and one
 * carts example sends `errors` as an object (epcc-api.md §1.0): accept all of them; anything else is none.
 */
export function readEpccErrors(text: string): EpccErrorEntry[] {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return []
  }
  const errors = (body as { errors?: unknown } | null)?.errors
  const list = Array.isArray(errors) ? errors : errors && typeof errors === 'object' ? [errors] : []
  return list
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
    .map((e) => {
      const status = typeof e.status === 'string' ? Number.parseInt(e.status, 10) : e.status
      return {
        status: typeof status === 'number' && Number.isInteger(status) ? status : undefined,
        title: typeof e.title === 'string' ? e.title.slice(0, 200) : '',
      }
    })
}

// A run of token characters long enough to be a credential, an id or a code (a JWT, an opaque token, a UUID,
// a PKCE verifier), with at least one digit: no word of an English title looks like that.
const TOKEN_SHAPED = /[A-Za-z0-9._~+/=-]{16,}/g

/**
 * EPCC's error text with anything that may be a secret taken out, before it goes into an error message, a log
 * line or `/readyz`: EPCC, or a gateway in front of it, may echo what it was sent. Every value of `sent` (the
 * bearer, the account token, the code, the verifier, a client secret) and every token-shaped run is replaced.
 */
export function scrubEpccText(text: string, sent: readonly string[]): string {
  let out = text
  for (const value of sent) if (value.length >= 4) out = out.split(value).join('[redacted]')
  return out.replace(TOKEN_SHAPED, (run) => (/[0-9]/.test(run) ? '[redacted]' : run))
}
