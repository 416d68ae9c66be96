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
