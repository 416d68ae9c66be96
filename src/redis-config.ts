/** Where the shared store lives: one Redis node, a Sentinel-managed master, or a Redis Cluster. */
export type RedisTopology =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel'
      sentinels: HostPort[]
      masterName: string
      /** `rediss://` entries: TLS to the Sentinels and to the master they name. */
      tls: boolean
      username?: string | undefined
      password?: string | undefined
      sentinelUsername?: string | undefined
      sentinelPassword?: string | undefined
    }
  | {
      kind: 'cluster'
      nodes: HostPort[]
      /** `rediss://` entries: TLS to every node. */
      tls: boolean
      username?: string | undefined
      password?: string | undefined
    }

export interface HostPort {
  host: string
  port: number
}

/** The environment variables that choose and reach the store's Redis. */
export interface RedisEnv {
  REDIS_URL?: string | undefined
  REDIS_SENTINELS?: string | undefined
  REDIS_SENTINEL_MASTER?: string | undefined
  REDIS_SENTINEL_USERNAME?: string | undefined
  REDIS_SENTINEL_PASSWORD?: string | undefined
  REDIS_CLUSTER_NODES?: string | undefined
  REDIS_USERNAME?: string | undefined
  REDIS_PASSWORD?: string | undefined
}

const MODES = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const
const SENTINEL_ONLY = ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_USERNAME', 'REDIS_SENTINEL_PASSWORD'] as const
const CREDENTIALS = ['REDIS_USERNAME', 'REDIS_PASSWORD'] as const

/**
 * The Redis topology the environment names, or none (the in-memory store). Exactly one of `REDIS_URL`,
 * `REDIS_SENTINELS` and `REDIS_CLUSTER_NODES`; every wrong combination is a problem line naming its variables,
 * never printing a value.
 */
export function redisTopologyFrom(env: RedisEnv): { topology?: RedisTopology; problems: string[] } {
  const problems: string[] = []
  const set = MODES.filter((name) => env[name] !== undefined)
  if (set.length > 1) {
    for (const name of set.slice(1)) {
      problems.push(`${name}: set only one of ${MODES.join(', ')} (also set: ${set[0]})`)
    }
  }
  const mode = set[0]
  for (const name of SENTINEL_ONLY) {
    if (env[name] !== undefined && mode !== 'REDIS_SENTINELS')
      problems.push(`${name}: only with REDIS_SENTINELS`)
  }
  for (const name of CREDENTIALS) {
    if (env[name] === undefined) continue
    if (mode === 'REDIS_URL') problems.push(`${name}: not with REDIS_URL (it carries its own credentials)`)
    else if (mode === undefined) problems.push(`${name}: only with REDIS_SENTINELS or REDIS_CLUSTER_NODES`)
  }
  if (mode === 'REDIS_SENTINELS' && env.REDIS_SENTINEL_MASTER === undefined) {
    problems.push('REDIS_SENTINEL_MASTER: is required with REDIS_SENTINELS')
  }

  let topology: RedisTopology | undefined
  if (mode === 'REDIS_URL' && env.REDIS_URL !== undefined) {
    if (/^rediss?:\/\/./.test(env.REDIS_URL)) topology = { kind: 'single', url: env.REDIS_URL }
    else problems.push('REDIS_URL: must be a redis:// or rediss:// URL')
  } else if (mode === 'REDIS_SENTINELS') {
    const list = hostList('REDIS_SENTINELS', env.REDIS_SENTINELS, problems)
    if (list && env.REDIS_SENTINEL_MASTER !== undefined) {
      topology = {
        kind: 'sentinel',
        sentinels: list.nodes,
        masterName: env.REDIS_SENTINEL_MASTER,
        tls: list.tls,
        username: env.REDIS_USERNAME,
        password: env.REDIS_PASSWORD,
        sentinelUsername: env.REDIS_SENTINEL_USERNAME,
        sentinelPassword: env.REDIS_SENTINEL_PASSWORD,
      }
    }
  } else if (mode === 'REDIS_CLUSTER_NODES') {
    const list = hostList('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES, problems)
    if (list) {
      topology = {
        kind: 'cluster',
        nodes: list.nodes,
        tls: list.tls,
        username: env.REDIS_USERNAME,
        password: env.REDIS_PASSWORD,
      }
    }
  }
  return problems.length > 0 ? { problems } : { topology, problems }
}

/** `host:port`, `redis://host:port` or `rediss://host:port`, comma-separated, all with one scheme. */
function hostList(
  name: string,
  value: string | undefined,
  problems: string[],
): { nodes: HostPort[]; tls: boolean } | undefined {
  const entries = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const nodes: HostPort[] = []
  const schemes = new Set<string>()
  for (const entry of entries) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(entry)?.[1]?.toLowerCase() ?? 'redis'
    let url: URL
    try {
      url = new URL(entry.includes('://') ? entry : `redis://${entry}`)
    } catch {
      problems.push(`${name}: every entry must be host:port, redis://host:port or rediss://host:port`)
      return undefined
    }
    if (scheme !== 'redis' && scheme !== 'rediss') {
      problems.push(`${name}: every entry must be host:port, redis://host:port or rediss://host:port`)
      return undefined
    }
    if (url.username || url.password) {
      problems.push(`${name}: must not carry credentials (use REDIS_USERNAME and REDIS_PASSWORD)`)
      return undefined
    }
    const port = Number(url.port)
    if (!url.hostname || !url.port || port < 1 || (url.pathname !== '' && url.pathname !== '/')) {
      problems.push(`${name}: every entry must be host:port, redis://host:port or rediss://host:port`)
      return undefined
    }
    schemes.add(scheme)
    // URL keeps the brackets of an IPv6 literal; sockets want the bare address.
    nodes.push({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port })
  }
  if (nodes.length === 0) {
    problems.push(`${name}: list at least one host:port`)
    return undefined
  }
  if (schemes.size > 1) {
    problems.push(`${name}: every entry must use the same scheme (redis:// or rediss://)`)
    return undefined
  }
  return { nodes, tls: schemes.has('rediss') }
}
