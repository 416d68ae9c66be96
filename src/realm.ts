import { type EpccClient, type OidcProfile, SettingsRefusedError } from './epcc/client.js'
import { EpccError } from './epcc/errors.js'
import { BffError } from './errors.js'

export interface RealmInfo {
  realmId: string
  /** The `client_id` of the authorization request (settings `meta.client_id`). */
  clientId: string
  profiles: OidcProfile[]
}

/** Settings and profiles change rarely: re-read them this often (epcc-api.md §1.2 suggests caching). */
const REFRESH_MS = 5 * 60_000

/**
 * The account-management realm as EPCC describes it: its id, the authorization `client_id`, and its OIDC
 * profiles. Loaded once, refreshed in the background, and the source of readiness (contract §3.3).
 */
export class Realm {
  private info: RealmInfo | undefined
  private loadedAt = 0
  private failing = true
  private pending: Promise<RealmInfo> | undefined
  private lastProblem: string | undefined

  constructor(
    private readonly epcc: EpccClient,
    private readonly configured: { realmId?: string | undefined; clientId?: string | undefined },
    private readonly now: () => number = Date.now,
  ) {}

  /** True while the last attempt to read EPCC succeeded. */
  get ready(): boolean {
    return this.info !== undefined && !this.failing
  }

  /**
   * Why the realm is not loaded, for operators (readiness): EPCC refused a read (and what fixes it) or did
   * not answer. Never a token: `EpccError` messages name the operation and status only.
   */
  get problem(): string | undefined {
    return this.ready ? undefined : (this.lastProblem ?? 'not loaded yet')
  }

  /** The realm, from cache while fresh; a stale or missing one is (re)loaded, one load at a time. */
  async current(): Promise<RealmInfo> {
    if (this.info && this.now() - this.loadedAt < REFRESH_MS) return this.info
    if (this.info) {
      // Serve the known profiles while a refresh runs; a login must not wait on it.
      this.refresh().catch(() => {})
      return this.info
    }
    return this.refresh()
  }

  refresh(): Promise<RealmInfo> {
    this.pending ??= this.load().finally(() => {
      this.pending = undefined
    })
    return this.pending
  }

  private async load(): Promise<RealmInfo> {
    try {
      const settings =
        this.configured.realmId && this.configured.clientId
          ? { realmId: this.configured.realmId, clientId: this.configured.clientId }
          : await this.epcc.accountAuthenticationSettings()
      const realmId = this.configured.realmId ?? settings.realmId
      const clientId = this.configured.clientId ?? settings.clientId
      const profiles = await this.epcc.oidcProfiles(realmId)
      this.info = { realmId, clientId, profiles }
      this.loadedAt = this.now()
      this.failing = false
      this.lastProblem = undefined
      return this.info
    } catch (err) {
      this.failing = true
      this.lastProblem = describeFailure(err)
      throw err
    }
  }

  /** The profile a login asks for; without one, the realm's only profile (contract §6 "Profiles"). */
  static pickProfile(realm: RealmInfo, profileId: string | undefined): OidcProfile {
    if (profileId === undefined) {
      const [only, ...others] = realm.profiles
      if (only && others.length === 0) return only
      if (!only) throw new BffError(400, 'unknown_profile', 'The realm has no OIDC profile.')
      throw new BffError(
        400,
        'profile_required',
        'The realm has several OIDC profiles; name one with ?profile=.',
      )
    }
    const profile = realm.profiles.find((p) => p.id === profileId)
    if (!profile) throw new BffError(400, 'unknown_profile', 'No OIDC profile with that id.')
    return profile
  }
}

function describeFailure(err: unknown): string {
  if (!(err instanceof EpccError)) return 'EPCC could not be read'
  if (err instanceof SettingsRefusedError) return err.detail // our own text: what to set
  // Never EPCC's own words: /readyz serves this to anyone who asks, and an error text may echo a token.
  if (err.kind === 'rejected') return `EPCC refused ${err.operation} (HTTP ${err.status})`
  return `EPCC did not answer ${err.operation}${err.status === undefined ? '' : ` (HTTP ${err.status})`}`
}
