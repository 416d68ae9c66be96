import t from 'tap'
import { forwardedRequestHeaders, returnedResponseHeaders, upstreamPath } from '../src/proxy.js'

const prefixes = ['/v2/carts', '/v2/orders', '/v2/accounts', '/v2/account-members', '/catalog', '/v2/catalog']

t.test('paths under a prefix are forwarded as they came', async (t) => {
  t.equal(upstreamPath('/v2/carts', prefixes), '/v2/carts')
  t.equal(upstreamPath('/v2/carts/abc/items', prefixes), '/v2/carts/abc/items')
  t.equal(upstreamPath('/v2/carts/', prefixes), '/v2/carts')
  t.equal(upstreamPath('/catalog/products', prefixes), '/catalog/products')
  t.equal(upstreamPath('/v2/carts/a%20b', prefixes), '/v2/carts/a%20b')
  t.equal(upstreamPath('/v2/orders/./1', prefixes), '/v2/orders/1')
  t.equal(
    upstreamPath('/v2/orders/x/../1', prefixes),
    '/v2/orders/1',
    'dot segments inside the prefix resolve',
  )
  t.equal(upstreamPath('/v2/account-members/m-1', prefixes), '/v2/account-members/m-1')
})

t.test('prefixes match whole segments, case-sensitively', async (t) => {
  for (const path of ['/v2/cartsX', '/v2/catalogs', '/V2/carts', '/v2/Carts', '/v2', '/', '/v2/settings']) {
    t.equal(upstreamPath(path, prefixes), undefined, path)
  }
})

t.test('escapes are refused (security.md A-39)', async (t) => {
  const escapes = [
    '/v2/carts/..%2f..%2fsettings',
    '/v2/carts/%2e%2e/%2e%2e/v2/settings',
    '/v2/carts/../../oauth/access_token',
    '/v2/carts/%2E%2E/%2E%2E/x',
    '/%2e%2e/v2/carts',
    '/../v2/carts',
    '//evil.example/v2/carts',
    '/v2/carts//evil.example',
    '/https://evil.example/x',
    '/http:%2f%2fevil.example',
    '/v2/carts\\..\\..\\x',
    '/v2/carts/%5c..%5cx',
    '/v2/carts/%00',
    '/v2/carts/a%2fb',
    '/v2/carts/%zz',
    '/v2/carts/a b',
    'v2/carts',
    `/v2/carts/${'a'.repeat(3000)}`,
  ]
  for (const path of escapes) t.equal(upstreamPath(path, prefixes), undefined, path)
})

t.test('token endpoints are never forwarded, whatever the prefixes', async (t) => {
  const wide = [...prefixes, '/oauth', '/v2/account-members']
  t.equal(upstreamPath('/oauth/access_token', wide), undefined)
  t.equal(upstreamPath('/v2/account-members/tokens', wide), undefined)
  t.equal(upstreamPath('/v2/account-members/%74okens', wide), undefined, 'also encoded')
  t.equal(upstreamPath('/v2/account-members/x/../tokens', wide), undefined, 'also through dot segments')
})

t.test("the browser's credentials and hop-by-hop headers never reach EPCC", async (t) => {
  const out = forwardedRequestHeaders({
    accept: 'application/json',
    'content-type': 'application/json',
    'accept-language': 'de',
    cookie: 'epcc-bff=x',
    authorization: 'Bearer browser',
    'ep-account-management-authentication-token': 'stolen',
    'ep-channel': 'web',
    'x-moltin-customer-token': 'x',
    'x-csrf': '1',
    origin: 'https://shop.example.com',
    connection: 'keep-alive, x-secret',
    'x-secret': 'hidden by connection',
    'transfer-encoding': 'chunked',
    'x-forwarded-for': '1.2.3.4',
    host: 'bff.example',
  })
  t.same(out, { accept: 'application/json', 'content-type': 'application/json', 'accept-language': 'de' })
})

t.test("EPCC's Set-Cookie and hop-by-hop headers never reach the browser", async (t) => {
  t.same(
    returnedResponseHeaders({
      'content-type': 'application/json',
      'Set-Cookie': ['a=1'],
      connection: 'close',
      'transfer-encoding': 'chunked',
      location: 'https://evil.example/steal',
      'cache-control': 'max-age=60',
    }),
    {
      'content-type': 'application/json',
      location: 'https://evil.example/steal',
      'cache-control': 'max-age=60',
    },
  )
})
