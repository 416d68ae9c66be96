import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { freePort } from '../../dev/net.js'
import type { RedisTopology } from '../../src/redis-config.js'

/**
 * Highly available Redis topologies for the tests, from Debian's `redis-server` on loopback ports: a master
 * with a replica and three Sentinels, or a three-master cluster with a replica each. Each node is a child
 * process of the test, stopped by its pid; nothing is written to disk but the node's own config in a temp dir.
 */
export interface RedisHa {
  kind: 'sentinel' | 'cluster'
  /** The BFF's environment for this topology. */
  env: Record<string, string>
  topology: RedisTopology
  /** Every key matching `pattern` and its value, across all masters (a test's look at what is stored). */
  dump(pattern: string): Promise<string[]>
  /** Resolves once every replica has received every write its master acknowledged so far. */
  replicated(): Promise<void>
  /**
   * Stops a master by its pid (SIGKILL: a crash, nothing flushed) and resolves once its replica has been
   * promoted and serves: Sentinel's choice, or the cluster's for the master of slot 0.
   */
  killMaster(): Promise<void>
  close(): Promise<void>
}

interface Node {
  port: number
  process: ChildProcess
}

const HOST = '127.0.0.1'

function startNode(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' })
  child.on('error', () => {}) // a missing binary shows as a node that never answers
  return child
}

async function startRedisNode(dir: string, extra: string[] = []): Promise<Node> {
  const port = await freePort()
  const process = startNode([
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    ...extra.map((a) => a.replaceAll('{port}', String(port))),
  ])
  await answering(port)
  return { port, process }
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`redis topology: ${what} did not happen within ${ms} ms`)
}

/** One command on a short-lived direct connection to one node. */
async function on<T>(port: number, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await work(redis)
  } finally {
    redis.disconnect()
  }
}

function answering(port: number): Promise<void> {
  return until(`redis on ${port} answering`, () => on(port, async (r) => (await r.ping()) === 'PONG'))
}

function info(port: number, section: string): Promise<Record<string, string>> {
  return on(port, async (r) => {
    const text = await r.info(section)
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    )
  })
}

/** Every replica of the master on `port` has the master's offset as it was on entry. */
async function replicatedFrom(port: number): Promise<void> {
  const target = Number((await info(port, 'replication')).master_repl_offset)
  await until(`replication from ${port}`, async () => {
    const replication = await info(port, 'replication')
    const replicas = Object.entries(replication).filter(([k]) => /^slave\d+$/.test(k))
    return (
      replicas.length > 0 && replicas.every(([, v]) => Number(/offset=(\d+)/.exec(v)?.[1] ?? -1) >= target)
    )
  })
}

async function dumpNode(port: number, pattern: string): Promise<string[]> {
  return on(port, async (r) => {
    const keys = await r.keys(pattern)
    const values = await Promise.all(keys.map((k) => storedText(r, k)))
    return [...keys, ...values.flat()]
  })
}

/** Every text stored under `key`: a string's value, or a hash's fields and values. */
export async function storedText(
  redis: Pick<Redis, 'type' | 'get' | 'hgetall'>,
  key: string,
): Promise<string[]> {
  if ((await redis.type(key)) === 'hash') return Object.entries(await redis.hgetall(key)).flat()
  const value = await redis.get(key)
  return value === null ? [] : [value]
}

function stop(node: Node): Promise<void> {
  if (node.process.exitCode !== null || node.process.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    node.process.once('exit', () => resolve())
    node.process.kill('SIGKILL')
  })
}

/** A master, one replica and three Sentinels (quorum 2) watching it as `bff-master`. */
export async function startSentinelTopology(): Promise<RedisHa> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-sentinel-'))
  const nodes: Node[] = []
  try {
    const master = await startRedisNode(dir)
    nodes.push(master)
    const replica = await startRedisNode(dir, ['--replicaof', HOST, String(master.port)])
    nodes.push(replica)
    await until(
      'the replica in sync',
      async () => (await info(replica.port, 'replication')).master_link_status === 'up',
    )
    const sentinels: Node[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      // Sentinel rewrites its config file: each gets its own, in the temp dir.
      const file = join(dir, `sentinel-${port}.conf`)
      writeFileSync(
        file,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor bff-master ${HOST} ${master.port} 2`,
          'sentinel down-after-milliseconds bff-master 1000',
          'sentinel failover-timeout bff-master 4000',
          'sentinel parallel-syncs bff-master 1',
          '',
        ].join('\n'),
      )
      const node = { port, process: startNode([file, '--sentinel']) }
      nodes.push(node)
      sentinels.push(node)
    }
    for (const s of sentinels) await answering(s.port)
    // A failover needs each Sentinel to know the replica and the two other Sentinels (hello every 2 s).
    await until('the Sentinels to know each other and the replica', async () => {
      for (const s of sentinels) {
        const master = await on(
          s.port,
          (r) => r.call('SENTINEL', 'MASTER', 'bff-master') as Promise<string[]>,
        )
        const field = (name: string) => master[master.indexOf(name) + 1]
        if (field('num-other-sentinels') !== '2' || field('num-slaves') !== '1') return false
      }
      return true
    })

    const masterPort = async () => {
      const [, port] = (await on(sentinels[0]?.port ?? 0, (r) =>
        r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'bff-master'),
      )) as [string, string]
      return Number(port)
    }
    const dataNodes = [master, replica]
    const sentinelList = sentinels.map((s) => `${HOST}:${s.port}`).join(',')
    return {
      kind: 'sentinel',
      env: { REDIS_SENTINELS: sentinelList, REDIS_SENTINEL_MASTER: 'bff-master' },
      topology: {
        kind: 'sentinel',
        sentinels: sentinels.map((s) => ({ host: HOST, port: s.port })),
        masterName: 'bff-master',
        tls: false,
      },
      dump: async (pattern) => dumpNode(await masterPort(), pattern),
      replicated: async () => replicatedFrom(await masterPort()),
      killMaster: async () => {
        const before = await masterPort()
        const node = dataNodes.find((n) => n.port === before)
        if (!node) throw new Error('the master is none of the nodes started')
        await stop(node)
        await until('Sentinel to promote the replica', async () => {
          const now = await masterPort()
          if (now === before) return false
          return (await info(now, 'replication')).role === 'master'
        })
      },
      close: async () => {
        await Promise.all(nodes.map(stop))
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await Promise.all(nodes.map(stop))
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** Three masters, each with a replica, as `redis-cli --cluster create` builds them. */
export async function startClusterTopology(): Promise<RedisHa> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-cluster-'))
  const nodes: Node[] = []
  try {
    for (let i = 0; i < 6; i++) {
      // The cluster bus gets a free port of its own: port + 10000 may be in the kernel's ephemeral range.
      const bus = await freePort()
      nodes.push(
        await startRedisNode(dir, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes-{port}.conf',
          '--cluster-node-timeout',
          '1000',
          '--cluster-port',
          String(bus),
        ]),
      )
    }
    await new Promise<void>((resolve, reject) => {
      const create = spawn(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `${HOST}:${n.port}`),
          '--cluster-replicas',
          '1',
          '--cluster-yes',
        ],
        { stdio: 'ignore' },
      )
      create.on('error', reject)
      create.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create: ${code}`)),
      )
    })
    const live = () => nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null)
    const clusterOk = async () => {
      for (const n of live()) if ((await clusterInfo(n.port)).cluster_state !== 'ok') return false
      return true
    }
    await until('the cluster to be ok on every node', clusterOk)
    const masters = async () => {
      const ports: number[] = []
      for (const n of live()) if ((await info(n.port, 'replication')).role === 'master') ports.push(n.port)
      return ports
    }
    await until('every replica in sync', async () => {
      for (const n of live()) {
        const replication = await info(n.port, 'replication')
        if (replication.role === 'slave' && replication.master_link_status !== 'up') return false
      }
      return true
    })

    return {
      kind: 'cluster',
      env: { REDIS_CLUSTER_NODES: nodes.map((n) => `${HOST}:${n.port}`).join(',') },
      topology: { kind: 'cluster', nodes: nodes.map((n) => ({ host: HOST, port: n.port })), tls: false },
      dump: async (pattern) => (await Promise.all((await masters()).map((p) => dumpNode(p, pattern)))).flat(),
      replicated: async () => {
        for (const port of await masters()) await replicatedFrom(port)
      },
      killMaster: async () => {
        const owner = await slotOwner(live()[0]?.port ?? 0, 0)
        const node = nodes.find((n) => n.port === owner)
        if (!node) throw new Error('the master of slot 0 is none of the nodes started')
        await stop(node)
        await until('the cluster to promote the replica of slot 0', async () => {
          const now = await slotOwner(live()[0]?.port ?? 0, 0)
          return now !== owner && (await clusterOk())
        })
      },
      close: async () => {
        await Promise.all(nodes.map(stop))
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await Promise.all(nodes.map(stop))
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

function clusterInfo(port: number): Promise<Record<string, string>> {
  return on(port, async (r) => {
    const text = (await r.call('CLUSTER', 'INFO')) as string
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter((l) => l.includes(':'))
        .map((l) => l.split(':') as [string, string]),
    )
  })
}

/** The port of the master that serves `slot`, as node `port` sees it. */
async function slotOwner(port: number, slot: number): Promise<number | undefined> {
  const slots = (await on(port, (r) => r.call('CLUSTER', 'SLOTS'))) as Array<
    [number, number, [string, number]]
  >
  const range = slots.find(([from, to]) => from <= slot && slot <= to)
  return range?.[2][1]
}
