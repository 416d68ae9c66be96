import type { Config } from './config.js'
import { EpccClient, type OidcProfile } from './epcc/client.js'
import { EpccError } from './epcc/errors.js'
import { RedisKeyValueStore } from './session/redis.js'

/** One line of `npm run check`: `fail` makes the exit code 1, `warn` does not. */
export interface Finding {
  level: 'ok' | 'warn' | 'fail'
  text: string
}

/** How long the check gives Redis to answer a PING before it says "unreachable". */
const REDIS_WAIT_MS = 2000

/**
 * Checks a loaded configuration against the store, without serving: the store token, the realm (from the
 * settings or the configured ids), its redirect_uris, its OIDC profiles, and Redis. Each finding names the
 * variable to look at and never prints a token or a secret.
 */
export async function checkSetup(config: Config): Promise<Finding[]> {
  const findings: Finding[] = []
  const ok = (text: string) => findings.push({ level: 'ok', text })
  const warn = (text: string) => findings.push({ level: 'warn', text })
  const fail = (text: string) => findings.push({ level: 'fail', text })
  const epcc = new EpccClient({
    baseUrl: config.epcc.baseUrl,
    clientId: config.epcc.clientId,
    clientSecret: config.epcc.clientSecret,
    timeoutMs: config.epcc.timeoutMs,
  })
  ok(`configuration: read as npm start reads it; redirect_uri ${config.redirectUri}`)

  try {
    await epcc.implicitToken()
    ok(`store token: EPCC at ${config.epcc.baseUrl} issues an implicit token to EPCC_CLIENT_ID`)
  } catch (err) {
    fail(
      refused(err)
        ? `store token: EPCC refused EPCC_CLIENT_ID (${describe(err)}); copy the Client ID of an application key from Commerce Manager`
        : `store token: EPCC at EPCC_BASE_URL ${config.epcc.baseUrl} did not answer (${describe(err)})`,
    )
    return withRedis(findings, config)
  }

  let realmId = config.epcc.realmId
  if (config.epcc.realmId && config.epcc.accountClientId) {
    ok('realm: EPCC_ACCOUNT_REALM_ID and EPCC_ACCOUNT_CLIENT_ID are set, the settings are not read')
  } else {
    try {
      const settings = await epcc.accountAuthenticationSettings()
      realmId ??= settings.realmId
      ok(`realm: account authentication settings name realm ${settings.realmId}`)
      if (config.epcc.realmId && config.epcc.realmId !== settings.realmId) {
        warn(
          `realm: EPCC_ACCOUNT_REALM_ID differs from the settings' realm ${settings.realmId}; the BFF uses yours`,
        )
      }
    } catch (err) {
      fail(
        refused(err)
          ? `realm: EPCC refused to read the account authentication settings (${describe(err)}); set EPCC_CLIENT_SECRET, or EPCC_ACCOUNT_REALM_ID and EPCC_ACCOUNT_CLIENT_ID`
          : `realm: the account authentication settings could not be read (${describe(err)})`,
      )
      return withRedis(findings, config)
    }
  }
  if (realmId === undefined) return withRedis(findings, config)

  try {
    const uris = await epcc.realmRedirectUris(realmId)
    if (uris.includes(config.redirectUri))
      ok(`redirect_uri: ${config.redirectUri} is registered in the realm`)
    else
      fail(
        `redirect_uri: ${config.redirectUri} is not in the realm's redirect_uris (${uris.length ? uris.join(', ') : 'none'}); add it, or fix PUBLIC_URL`,
      )
  } catch (err) {
    warn(
      `redirect_uri: the realm's redirect_uris could not be read (${describe(err)}); make sure ${config.redirectUri} is one of them`,
    )
  }

  let profiles: OidcProfile[] = []
  try {
    profiles = await epcc.oidcProfiles(realmId)
    if (profiles.length === 0) {
      fail(`OIDC profiles: realm ${realmId} has none; add the member's identity provider as an OIDC profile`)
    } else {
      ok(`OIDC profiles: ${profiles.map((p) => `${p.name} (${p.id})`).join(', ')}`)
    }
  } catch (err) {
    fail(
      refused(err)
        ? `OIDC profiles: EPCC refused to list them for realm ${realmId} (${describe(err)}); check EPCC_ACCOUNT_REALM_ID`
        : `OIDC profiles: could not be read (${describe(err)})`,
    )
  }
  return withRedis(findings, config)
}

async function withRedis(findings: Finding[], config: Config): Promise<Finding[]> {
  const topology = config.redis
  if (topology === undefined) {
    findings.push({
      level: 'ok',
      text: 'sessions: in process memory (no Redis configured): run one replica only',
    })
    return findings
  }
  const where = { single: 'REDIS_URL', sentinel: 'REDIS_SENTINELS', cluster: 'REDIS_CLUSTER_NODES' }[
    topology.kind
  ]
  const store = new RedisKeyValueStore(topology)
  try {
    const deadline = Date.now() + REDIS_WAIT_MS
    for (;;) {
      try {
        await store.ping()
        findings.push({ level: 'ok', text: `sessions: Redis at ${where} answers` })
        break
      } catch {
        if (Date.now() >= deadline) {
          findings.push({ level: 'fail', text: `sessions: Redis at ${where} does not answer` })
          break
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  } finally {
    await store.close()
  }
  return findings
}

function refused(err: unknown): boolean {
  return err instanceof EpccError && err.kind === 'rejected'
}

/** The operation's outcome in a few words; EpccError messages carry no token or code. */
function describe(err: unknown): string {
  if (err instanceof EpccError) return err.status === undefined ? err.detail : `HTTP ${err.status}`
  return err instanceof Error ? err.message : String(err)
}
