/**
 * The typed client is a package a storefront installs: `npm pack` in client/ builds it, and the tarball
 * installs into another project (offline: it has no dependencies) and imports by its name.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const CLIENT = join(import.meta.dirname, '..', 'client')

t.test('client/ packs into a package a storefront installs and imports', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bff-client-pack-'))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: CLIENT })
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{
    name: string
    filename: string
    files: Array<{ path: string }>
  }>
  t.equal(packed?.name, '@epcc-oidc-bff/client')
  t.same(
    packed?.files.map((f) => f.path).sort(),
    ['README.md', 'dist/index.d.ts', 'dist/index.js', 'package.json'],
    'the built module, its types and its README; no source, no tests',
  )

  const shop = mkdtempSync(join(tmpdir(), 'bff-client-shop-'))
  writeFileSync(join(shop, 'package.json'), JSON.stringify({ name: 'shop', private: true, type: 'module' }))
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(out, packed?.filename ?? '')], {
    cwd: shop,
  })
  writeFileSync(
    join(shop, 'use.js'),
    `import { createBffClient } from '@epcc-oidc-bff/client'
const bff = createBffClient('https://shop.example.com/bff/')
console.log(bff.loginUrl({ returnTo: '/orders', prompt: 'login' }))`,
  )
  const used = await run(process.execPath, ['use.js'], { cwd: shop })
  t.equal(
    used.stdout.trim(),
    'https://shop.example.com/bff/auth/login?returnTo=%2Forders&prompt=login',
    'the installed package imports by its name and works',
  )
})
