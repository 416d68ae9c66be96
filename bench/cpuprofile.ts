/**
 * The top self-time functions of a V8 .cpuprofile (`node --cpu-prof`), and self time by package.
 *   node dist/bench/cpuprofile.js <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** Where a frame comes from: an npm package, this project's code, Node's internals, or V8 itself. */
function origin(url: string): string {
  if (!url) return '(v8 / native)'
  if (url.startsWith('node:')) return 'node: internals'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  const own = /\/dist\/(src|plugins|routes)\//.exec(url)
  if (own) return `project ${own[1]}/`
  return url
}

function shortUrl(url: string): string {
  const i = url.lastIndexOf('node_modules/')
  if (i >= 0) return url.slice(i + 'node_modules/'.length)
  const d = url.indexOf('/dist/')
  return d >= 0 ? url.slice(d + 1) : url
}

/** Layers of the BFF, by the code a frame belongs to; the first that matches wins. */
const LAYERS: Array<[string, RegExp]> = [
  ['security headers (helmet)', /helmet/],
  ['CORS (@fastify/cors)', /@fastify\/cors|dist\/plugins\/cors/],
  ['CSRF check', /dist\/plugins\/csrf/],
  [
    // connect-redis and node-redis (@redis/*) are the afternoon anchor's session store; ioredis is not listed,
    // as the BFF's rate limiter uses it too (its calls count for the layer that made them).
    'session (@fastify/session, cookie, sealed store)',
    /@fastify\/session|@fastify\/cookie|safe-stable-stringify|\/cookie\/|dist\/plugins\/session|dist\/src\/session\/|connect-redis|@redis\//,
  ],
  ['metrics (prom-client)', /prom-client|dist\/plugins\/metrics|dist\/src\/metrics/],
  ['request logging (pino child loggers)', /pino|@pinojs|sonic-boom/],
  ['load shedding, rate limits', /under-pressure|rate-limit/],
  ['upstream client (undici)', /undici/],
  ['route handlers and domain code', /dist\/(routes|src)\//],
  ['schemas, serialization (ajv, fast-json-stringify)', /ajv|fast-json-stringify|fast-uri/],
  ['Fastify core (routing, hooks, reply)', /fastify\/|find-my-way|avvio|light-my-request|toad-cache/],
]
const SOCKET_WRITES = new Set([
  'writev',
  'writeString',
  'writeBuffer',
  'writeLatin1String',
  'writeUtf8String',
])

/**
 * Busy time by layer: each sample goes to the innermost frame that belongs to a layer (what Node does on a
 * package's behalf counts for that package), except socket writes (the kernel's loopback send), garbage
 * collection and Node's own HTTP parsing and streams.
 */
function layerRows(profile: Profile, byId: Map<number, ProfileNode>, parent: Map<number, number>): string[] {
  const time = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const leaf = byId.get(id)!.callFrame
    if (leaf.functionName === '(idle)') return
    busy += dt
    let layer: string | undefined
    if (leaf.functionName === '(garbage collector)') layer = 'garbage collection'
    else if (!leaf.url && SOCKET_WRITES.has(leaf.functionName)) layer = 'socket writes (kernel, loopback)'
    for (let at: number | undefined = id; !layer && at !== undefined; at = parent.get(at)) {
      const { url } = byId.get(at)!.callFrame
      if (url && !url.startsWith('node:')) layer = LAYERS.find(([, re]) => re.test(url))?.[0]
    }
    layer ??= 'Node (HTTP parser, streams, timers, other)'
    time.set(layer, (time.get(layer) ?? 0) + dt)
  })
  return [...time]
    .sort((a, b) => b[1] - a[1])
    .map(([layer, us]) => `| ${((100 * us) / busy).toFixed(1)} % | ${layer} |`)
}

export function summarizeProfile(file: string, top = 30): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
  })

  const byFunction = new Map<string, number>()
  const byOrigin = new Map<string, number>()
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const name = `${functionName || '(anonymous)'} ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`.trim()
    byFunction.set(name, (byFunction.get(name) ?? 0) + us)
    const from = origin(url)
    byOrigin.set(from, (byOrigin.get(from) ?? 0) + us)
  }
  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at)!.callFrame
      if (!url || url.startsWith('node:')) continue
      seen.add(`${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`)
    }
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + dt)
  })

  const rows = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `| ${((100 * us) / total).toFixed(1)} % | ${(us / 1000).toFixed(0)} | \`${k}\` |`)
  return [
    `${(total / 1e6).toFixed(1)} s sampled`,
    '',
    '| share of busy time | layer |',
    '|---|---|',
    ...layerRows(profile, byId, parent),
    '',
    '| self | ms | function |',
    '|---|---|---|',
    ...rows(byFunction, top),
    '',
    '| self | ms | from |',
    '|---|---|---|',
    ...rows(byOrigin, 15),
    '',
    '| inclusive | ms | function (packages and project code only) |',
    '|---|---|---|',
    ...rows(inclusive, top),
  ].join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [file, top] = process.argv.slice(2)
  if (!file) throw new Error('usage: cpuprofile.js <file.cpuprofile> [top]')
  process.stdout.write(`${summarizeProfile(file, Number(top ?? 30))}\n`)
}
