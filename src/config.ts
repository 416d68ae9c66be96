import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import envSchema from 'env-schema'
import { type Static, Type } from 'typebox'
import { type RedisTopology, redisTopologyFrom } from './redis-config.js'

/** The environment variables of contract §1; TypeBox drives both validation and the raw type. */
export const EnvSchema = Type.Object({
  EPCC_BASE_URL: Type.String({ default: 'https://useast.api.elasticpath.com' }),
  EPCC_CLIENT_ID: Type.String({ minLength: 1 }),
  EPCC_CLIENT_SECRET: Type.Optional(Type.String()),
  EPCC_ACCOUNT_REALM_ID: Type.Optional(Type.String()),
  EPCC_ACCOUNT_CLIENT_ID: Type.Optional(Type.String()),
  PUBLIC_URL: Type.String(),
  FRONTEND_URL: Type.String(),
  FRONTEND_EXTRA_ORIGINS: Type.Optional(Type.String()),
  LOGIN_ERROR_PATH: Type.String({ default: '/login' }),
  SESSION_SECRET: Type.String(),
  REDIS_URL: Type.Optional(Type.String()),
  REDIS_SENTINELS: Type.Optional(Type.String()),
  REDIS_SENTINEL_MASTER: Type.Optional(Type.String()),
  REDIS_SENTINEL_USERNAME: Type.Optional(Type.String()),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String()),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String()),
  REDIS_USERNAME: Type.Optional(Type.String()),
  REDIS_PASSWORD: Type.Optional(Type.String()),
  ADMIN_TOKEN: Type.Optional(Type.String()),
  SESSION_IDLE_TIMEOUT_S: Type.Integer({ minimum: 1, default: 1800 }),
  SESSION_ABSOLUTE_TIMEOUT_S: Type.Integer({ minimum: 1, default: 43200 }),
  PROXY_PATH_PREFIXES: Type.String({
    default: '/v2/carts,/v2/orders,/v2/accounts,/v2/account-members,/catalog,/v2/catalog',
  }),
  EPCC_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 5000 }),
  TRUST_PROXY: Type.String({ default: 'false' }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 120 }),
  API_RATE_LIMIT_PER_SESSION: Type.Integer({ minimum: 1, default: 600 }),
  API_RATE_LIMIT_PER_ADDRESS: Type.Integer({ minimum: 1, default: 3000 }),
  PENDING_LOGIN_LIMIT: Type.Integer({ minimum: 1, default: 20_000 }),
  MAX_SESSIONS_PER_MEMBER: Type.Integer({ minimum: 1, default: 100 }),
  MAX_CONNECTIONS: Type.Integer({ minimum: 1, default: 4096 }),
  SHUTDOWN_DRAIN_S: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
  HOST: Type.String({ default: '0.0.0.0' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  LOG_LEVEL: Type.Unsafe<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>({
    type: 'string',
    enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
  }),
})
export type Env = Static<typeof EnvSchema>

export type TrustProxy = boolean | number | string[]

export interface Config {
  epcc: {
    baseUrl: string
    clientId: string
    clientSecret: string | undefined
    realmId: string | undefined
    accountClientId: string | undefined
    timeoutMs: number
  }
  /** `PUBLIC_URL` without a trailing slash. */
  publicUrl: URL
  /** The path every route is mounted under ('' for the root). */
  basePath: string
  redirectUri: string
  frontendUrl: string
  frontendOrigin: string
  /** Origins allowed as `returnTo` targets and for CORS. */
  allowedOrigins: ReadonlySet<string>
  loginErrorUrl: string
  session: {
    secrets: string[]
    cookieName: string
    secure: boolean
    idleTimeoutS: number
    absoluteTimeoutS: number
  }
  /** The shared store's Redis (one node, Sentinel or Cluster); none: sessions live in process memory. */
  redis: RedisTopology | undefined
  proxy: { pathPrefixes: string[] }
  /** The operators' bearer token for the administration routes; they exist only when it is set. */
  adminToken: string | undefined
  trustProxy: TrustProxy
  /** Requests per minute and client address on each of /auth/login and /oauth2/callback. */
  rateLimitPerMinute: number
  /** Requests per minute on /session* and /api/epcc/*, per session and per client address. */
  apiRateLimit: { perSession: number; perAddress: number }
  /** Logins one process lets be pending at once (started in the last 10 minutes and not come back). */
  pendingLoginLimit: number
  /** Live sessions one member may have; a login beyond it ends the least recently used. */
  maxSessionsPerMember: number
  /** Open connections the server accepts at once; more are refused. */
  maxConnections: number
  /** Seconds between SIGTERM (readiness 503) and closing the listener. */
  shutdownDrainS: number
  host: string
  port: number
  logLevel: string
}

/** The line that ends every configuration error: where a newcomer reads what each variable takes. */
export const CONFIG_HELP = 'see .env.example for every variable, its default and its allowed values'

/** Every problem found in the environment, one line each, naming the variable and never its value. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}\n${CONFIG_HELP}`)
    this.name = 'ConfigError'
  }
}

const SECRET_MIN_LENGTH = 32

/**
 * Reads the configuration from `env` merged over `.env` in `cwd` (the environment wins).
 * An empty value counts as missing (contract §6).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const merged: Record<string, string> = {}
  for (const source of [readDotEnv(cwd), env]) {
    for (const [key, value] of Object.entries(source)) {
      if (key in EnvSchema.properties && value !== undefined && value !== '') merged[key] = value
    }
  }
  let raw: Env | undefined
  let problems: string[] = []
  try {
    raw = envSchema<Env>({ schema: structuredClone(EnvSchema), data: merged, env: false })
  } catch (err) {
    problems = schemaProblems(err)
  }
  // Check the values the schema accepted too, so that one run names every problem.
  const flagged = new Set(problems.map((p) => p.slice(0, p.indexOf(':'))))
  const checked = buildConfig(raw ?? withDefaults(merged, flagged))
  problems.push(...checked.problems.filter((p) => !flagged.has(p.slice(0, p.indexOf(':')))))
  if (problems.length > 0 || !raw || !checked.config) throw new ConfigError(problems)
  return checked.config
}

/** The string values and schema defaults, for the semantic checks of a run the schema refused. */
function withDefaults(merged: Record<string, string>, flagged: Set<string>): Env {
  const values: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    if (flagged.has(key)) continue
    values[key] = merged[key] ?? (schema as { default?: unknown }).default
  }
  return values as Env
}

function readDotEnv(cwd: string): Record<string, string> {
  try {
    return parseEnv(readFileSync(resolve(cwd, '.env'), 'utf8')) as Record<string, string>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
}

interface AjvIssue {
  instancePath: string
  keyword: string
  params: { missingProperty?: string; allowedValues?: unknown[] }
  message?: string
}

function schemaProblems(err: unknown): string[] {
  const issues = (err as { errors?: AjvIssue[] }).errors
  if (!issues) return [String((err as Error).message)]
  const lines = new Set<string>()
  for (const issue of issues) {
    if (issue.keyword === 'required') {
      lines.add(`${issue.params.missingProperty}: is required`)
    } else if (issue.keyword === 'enum' && issue.params.allowedValues) {
      // The allowed values are the schema's, never the offending value.
      const name = issue.instancePath.replace(/^\//, '')
      lines.add(`${name}: must be one of ${issue.params.allowedValues.join(', ')}`)
    } else {
      const name = issue.instancePath.replace(/^\//, '')
      // Ajv's messages describe the rule ("must be integer"), never the offending value.
      lines.add(`${name}: ${issue.message}`)
    }
  }
  return [...lines]
}

function buildConfig(raw: Env): { config?: Config; problems: string[] } {
  const problems: string[] = []
  const httpUrl = (name: string, value: string | undefined): URL | undefined => {
    if (value === undefined) return undefined
    try {
      const url = new URL(value)
      if (url.protocol === 'http:' || url.protocol === 'https:') {
        if (url.username || url.password) problems.push(`${name}: must not carry credentials`)
        else if (url.search || url.hash) problems.push(`${name}: must not have a query or fragment`)
        else return url
      } else problems.push(`${name}: must be an http or https URL`)
    } catch {
      problems.push(`${name}: must be an absolute URL`)
    }
    return undefined
  }

  const epccBase = httpUrl('EPCC_BASE_URL', raw.EPCC_BASE_URL)
  const publicUrl = httpUrl('PUBLIC_URL', raw.PUBLIC_URL)
  const frontendUrl = httpUrl('FRONTEND_URL', raw.FRONTEND_URL)

  const extraOrigins: string[] = []
  for (const entry of splitList(raw.FRONTEND_EXTRA_ORIGINS)) {
    const url = httpUrl('FRONTEND_EXTRA_ORIGINS', entry)
    if (url) extraOrigins.push(url.origin)
  }

  const errorPath = loginErrorPath(raw.LOGIN_ERROR_PATH ?? '/login')
  if (errorPath === undefined) problems.push('LOGIN_ERROR_PATH: must be a path starting with a single /')

  const secrets = splitList(raw.SESSION_SECRET)
  if (raw.SESSION_SECRET !== undefined && secrets.length === 0) problems.push('SESSION_SECRET: is required')
  if (secrets.some((s) => s.length < SECRET_MIN_LENGTH)) {
    problems.push(`SESSION_SECRET: every entry needs at least ${SECRET_MIN_LENGTH} characters`)
  }

  const redis = redisTopologyFrom(raw)
  problems.push(...redis.problems)

  if (raw.ADMIN_TOKEN !== undefined && raw.ADMIN_TOKEN.length < SECRET_MIN_LENGTH) {
    problems.push(`ADMIN_TOKEN: needs at least ${SECRET_MIN_LENGTH} characters`)
  }

  const pathPrefixes = splitList(raw.PROXY_PATH_PREFIXES ?? '').map((p) => p.replace(/\/+$/, ''))
  if (
    pathPrefixes.some((p) => !/^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/.test(p) || p.split('/').includes('..'))
  ) {
    problems.push('PROXY_PATH_PREFIXES: every entry must be an absolute path such as /v2/carts')
  }

  const trustProxy = parseTrustProxy(raw.TRUST_PROXY ?? 'false')
  if (trustProxy === undefined) {
    problems.push('TRUST_PROXY: must be true, false, a hop count, or comma-separated addresses/CIDRs')
  }

  if (
    problems.length > 0 ||
    !epccBase ||
    !publicUrl ||
    !frontendUrl ||
    trustProxy === undefined ||
    errorPath === undefined
  ) {
    return { problems }
  }

  const publicBase = stripSlash(publicUrl.href)
  const basePath = stripSlash(publicUrl.pathname)
  const secure = publicUrl.protocol === 'https:'
  const config: Config = {
    epcc: {
      baseUrl: stripSlash(epccBase.href),
      clientId: raw.EPCC_CLIENT_ID,
      clientSecret: raw.EPCC_CLIENT_SECRET,
      realmId: raw.EPCC_ACCOUNT_REALM_ID,
      accountClientId: raw.EPCC_ACCOUNT_CLIENT_ID,
      timeoutMs: raw.EPCC_TIMEOUT_MS,
    },
    publicUrl: new URL(publicBase),
    basePath,
    redirectUri: `${publicBase}/oauth2/callback`,
    frontendUrl: stripSlash(frontendUrl.href),
    frontendOrigin: frontendUrl.origin,
    allowedOrigins: new Set([frontendUrl.origin, ...extraOrigins]),
    loginErrorUrl: `${frontendUrl.origin}${errorPath}`,
    session: {
      secrets,
      // RFC 6265bis §4.1.3.2: a __Host- cookie must be Secure, Path=/ and have no Domain.
      cookieName: secure ? '__Host-epcc-bff' : 'epcc-bff',
      secure,
      idleTimeoutS: raw.SESSION_IDLE_TIMEOUT_S,
      absoluteTimeoutS: raw.SESSION_ABSOLUTE_TIMEOUT_S,
    },
    redis: redis.topology,
    proxy: { pathPrefixes },
    adminToken: raw.ADMIN_TOKEN,
    trustProxy,
    rateLimitPerMinute: raw.RATE_LIMIT_PER_MINUTE,
    apiRateLimit: { perSession: raw.API_RATE_LIMIT_PER_SESSION, perAddress: raw.API_RATE_LIMIT_PER_ADDRESS },
    pendingLoginLimit: raw.PENDING_LOGIN_LIMIT,
    maxSessionsPerMember: raw.MAX_SESSIONS_PER_MEMBER,
    maxConnections: raw.MAX_CONNECTIONS,
    shutdownDrainS: raw.SHUTDOWN_DRAIN_S,
    host: raw.HOST,
    port: raw.PORT,
    logLevel: raw.LOG_LEVEL,
  }
  return { config, problems }
}

/**
 * `LOGIN_ERROR_PATH` as it goes into a `Location` header: percent-encoded now (`/登录` → `/%E7%99%BB%E5%BD%95`),
 * so that no redirect can fail at request time; undefined when it is not a plain path (a second `/` at the
 * start would make it another host; a query, fragment, backslash, space or control character is refused).
 */
export function loginErrorPath(value: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\s?#\u0000-\u001f\u007f]/.test(value)) {
    return undefined
  }
  // Dot segments (`/a/../b`, `/%2e%2e/`) would change the path unseen.
  if (value.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) return undefined
  return new URL(value, 'http://path.invalid').pathname
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function stripSlash(value: string): string {
  return value.replace(/\/+$/, '')
}

const IPV4_OR_CIDR = /^(\d{1,3})(\.\d{1,3}){3}(\/\d{1,2})?$/
const IPV6_OR_CIDR = /^[0-9a-fA-F:.]+(\/\d{1,3})?$/

/** `TRUST_PROXY` as Fastify's `trustProxy`: a boolean, a hop count, or addresses/CIDRs. */
export function parseTrustProxy(value: string): TrustProxy | undefined {
  const v = value.trim().toLowerCase()
  if (v === 'true') return true
  if (v === 'false') return false
  if (/^\d+$/.test(v)) return Number(v)
  const entries = splitList(value)
  if (
    entries.length > 0 &&
    entries.every((e) => IPV4_OR_CIDR.test(e) || (e.includes(':') && IPV6_OR_CIDR.test(e)))
  ) {
    return entries
  }
  return undefined
}
