/**
 * The documentation stands alone: every relative link in README.md, docs/ and client/README.md resolves to a
 * file of this repository (and, with a #fragment, to a heading in it), web links point only at example or
 * loopback hosts, and no page cites a document that is not in the repository.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

const ROOT = join(import.meta.dirname, '..')
const pages = [
  'README.md',
  'client/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** The page without fenced code blocks and inline code, where link-like text is an example. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
}

/** GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const found = new Set<string>()
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = (heading ?? '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    found.add(n === 0 ? base : `${base}-${n}`)
  }
  return found
}

function links(markdown: string): string[] {
  const text = prose(markdown)
  return [
    ...[...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] ?? ''),
    ...[...text.matchAll(/<(https?:\/\/[^>\s]+)>/g)].map((m) => m[1] ?? ''),
  ]
}

t.test('the pages exist', async (t) => {
  for (const page of [
    'docs/configuration.md',
    'docs/http-api.md',
    'docs/storefront.md',
    'docs/deployment.md',
    'docs/operations.md',
    'docs/security.md',
    'docs/real-store.md',
  ]) {
    t.ok(pages.includes(page), page)
  }
})

for (const page of pages) {
  t.test(`every link in ${page} resolves`, async (t) => {
    const markdown = readFileSync(join(ROOT, page), 'utf8')
    const found = links(markdown)
    t.ok(found.length > 0 || page === 'client/README.md', 'the page links somewhere')
    for (const link of found) {
      if (/^https?:/.test(link)) {
        t.match(
          new URL(link).hostname,
          /^(localhost|127\.0\.0\.1|(.+\.)?example\.(com|org))$/,
          `${link}: web links only to loopback or example hosts`,
        )
        continue
      }
      const [path = '', fragment] = link.split('#')
      const target =
        path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), decodeURIComponent(path))
      t.ok(!relative(ROOT, target).startsWith('..'), `${link}: inside the repository`)
      t.ok(existsSync(target), `${link}: ${relative(ROOT, target)} exists`)
      if (fragment !== undefined && existsSync(target) && target.endsWith('.md')) {
        t.ok(anchors(readFileSync(target, 'utf8')).has(fragment), `${link}: #${fragment} is a heading there`)
      }
    }
  })
}

t.test('no page cites a document outside the repository', async (t) => {
  for (const page of [...pages, '.env.example']) {
    const text = readFileSync(join(ROOT, page), 'utf8')
    t.notMatch(text, /contract|shared\/reference|security reference|\bissue #?\d+/i, page)
  }
})

t.test('the README keeps the two commands', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  t.match(readme, 'npm ci && npm run demo')
  t.match(readme, 'npm test')
})
