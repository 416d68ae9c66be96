import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

const SECRET = 'a-session-secret-that-is-long-enough-1234'
const valid = {
  EPCC_CLIENT_ID: 'client',
  PUBLIC_URL: 'https://shop.example.com/bff/',
  FRONTEND_URL: 'https://shop.example.com/',
  SESSION_SECRET: SECRET,
}
const emptyDir = mkdtempSync(join(tmpdir(), 'bff-config-'))

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, emptyDir)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('a complete environment gives the derived settings of the contract', async (t) => {
  const config = loadConfig(valid, emptyDir)
  t.equal(config.redirectUri, 'https://shop.example.com/bff/oauth2/callback')
  t.equal(config.basePath, '/bff')
  t.equal(config.session.cookieName, '__Host-epcc-bff')
  t.equal(config.session.secure, true)
  t.equal(config.loginErrorUrl, 'https://shop.example.com/login')
  t.equal(config.frontendUrl, 'https://shop.example.com')
  t.equal(config.epcc.baseUrl, 'https://useast.api.elasticpath.com')
  t.equal(config.epcc.timeoutMs, 5000)
  t.equal(config.session.idleTimeoutS, 1800)
  t.equal(config.session.absoluteTimeoutS, 43200)
  t.same(config.proxy.pathPrefixes, [
    '/v2/carts',
    '/v2/orders',
    '/v2/accounts',
    '/v2/account-members',
    '/catalog',
    '/v2/catalog',
  ])
  t.equal(config.trustProxy, false)
})

t.test('an http PUBLIC_URL gives the plain cookie name, served at the root', async (t) => {
  const config = loadConfig({ ...valid, PUBLIC_URL: 'http://localhost:3000' }, emptyDir)
  t.equal(config.session.cookieName, 'epcc-bff')
  t.equal(config.session.secure, false)
  t.equal(config.basePath, '')
  t.equal(config.redirectUri, 'http://localhost:3000/oauth2/callback')
})

t.test('each missing required variable is named on its own line', async (t) => {
  for (const name of Object.keys(valid)) {
    const env: Record<string, string> = { ...valid }
    delete env[name]
    t.same(problems(env), [`${name}: is required`], name)
    t.same(problems({ ...valid, [name]: '' }), [`${name}: is required`], `${name} empty counts as missing`)
  }
})

t.test('every problem of one run is reported, and no value is printed', async (t) => {
  const found = problems({
    EPCC_CLIENT_ID: 'client',
    PUBLIC_URL: 'not a url',
    FRONTEND_URL: 'ftp://shop.example.com',
    SESSION_SECRET: `${SECRET},too-short-secret`,
    SESSION_IDLE_TIMEOUT_S: 'soon',
    EPCC_TIMEOUT_MS: '0',
    TRUST_PROXY: 'maybe',
    REDIS_URL: 'http://redis',
    LOG_LEVEL: 'loud',
  })
  t.same(found.map((line) => line.split(':')[0]).sort(), [
    'EPCC_TIMEOUT_MS',
    'FRONTEND_URL',
    'LOG_LEVEL',
    'PUBLIC_URL',
    'REDIS_URL',
    'SESSION_IDLE_TIMEOUT_S',
    'SESSION_SECRET',
    'TRUST_PROXY',
  ])
  t.notMatch(found.join('\n'), /too-short-secret|a-session-secret/)
})

t.test('an enumerated variable names its allowed values', async (t) => {
  t.same(problems({ ...valid, LOG_LEVEL: 'loud' }), [
    'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
  ])
})

t.test(
  'every URL-ish value is encoded or refused at start, so that no redirect can fail later',
  async (t) => {
    const accepted: Array<[string, string]> = [
      ['/登录', 'https://shop.example.com/%E7%99%BB%E5%BD%95'],
      ['/sign in failed'.replaceAll(' ', '-'), 'https://shop.example.com/sign-in-failed'],
      ['/a%zz', 'https://shop.example.com/a%zz'],
    ]
    for (const [path, url] of accepted) {
      t.equal(loadConfig({ ...valid, LOGIN_ERROR_PATH: path }, emptyDir).loginErrorUrl, url, path)
    }
    for (const path of [
      'login',
      '//evil.example',
      '/a b',
      '/x?y=1',
      '/x#y',
      '/a\\b',
      '/a/../b',
      '/%2e%2e/b',
      '/\u0000',
    ]) {
      t.same(
        problems({ ...valid, LOGIN_ERROR_PATH: path }),
        ['LOGIN_ERROR_PATH: must be a path starting with a single /'],
        JSON.stringify(path),
      )
    }
    const international = loadConfig(
      { ...valid, FRONTEND_URL: 'https://bücher.example/ü', PUBLIC_URL: 'https://bücher.example/bff' },
      emptyDir,
    )
    t.equal(international.frontendUrl, 'https://xn--bcher-kva.example/%C3%BC')
    t.equal(international.redirectUri, 'https://xn--bcher-kva.example/bff/oauth2/callback')
    t.same(
      problems({ ...valid, MAX_CONNECTIONS: '0' }).map((p) => p.split(':')[0]),
      ['MAX_CONNECTIONS'],
    )
  },
)

t.test('TRUST_PROXY takes booleans, hop counts and address lists', async (t) => {
  t.equal(loadConfig({ ...valid, TRUST_PROXY: 'true' }, emptyDir).trustProxy, true)
  t.equal(loadConfig({ ...valid, TRUST_PROXY: '2' }, emptyDir).trustProxy, 2)
  t.same(loadConfig({ ...valid, TRUST_PROXY: '10.0.0.0/8, ::1' }, emptyDir).trustProxy, ['10.0.0.0/8', '::1'])
})

t.test('.env in the working directory is read, and the environment wins over it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bff-dotenv-'))
  writeFileSync(join(dir, '.env'), `EPCC_CLIENT_ID=from-file\nLOG_LEVEL=debug\nSESSION_SECRET=${SECRET}\n`)
  const { SESSION_SECRET: _s, ...rest } = valid
  const config = loadConfig({ ...rest, EPCC_CLIENT_ID: 'from-env' }, dir)
  t.equal(config.epcc.clientId, 'from-env')
  t.equal(config.logLevel, 'debug')
})

t.test(
  'the server refuses to start on a bad environment: exit ≠ 0, one line per problem, no secret',
  async (t) => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', SESSION_SECRET: 'short-secret-value' }
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env,
      cwd: join(import.meta.dirname, '..'),
    })
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    t.not(code, 0)
    const lines = stderr.trim().split('\n')
    for (const name of ['EPCC_CLIENT_ID', 'PUBLIC_URL', 'FRONTEND_URL', 'SESSION_SECRET']) {
      t.ok(
        lines.some((l) => l.startsWith(`config: ${name}:`)),
        `${name} named`,
      )
    }
    t.equal(lines.at(-1), 'config: see .env.example for every variable, its default and its allowed values')
    t.notMatch(stderr + stdout, /short-secret-value/)
  },
)
