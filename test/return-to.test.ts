import t from 'tap'
import { resolveReturnTo } from '../src/return-to.js'

const rules = {
  frontendUrl: 'https://shop.example.com/home',
  frontendOrigin: 'https://shop.example.com',
  allowedOrigins: new Set(['https://shop.example.com', 'https://b2b.example.com']),
}

t.test('paths resolve against the storefront origin and come back absolute', async (t) => {
  t.equal(resolveReturnTo('/orders?x=1', rules), 'https://shop.example.com/orders?x=1')
  t.equal(resolveReturnTo('/a/../b#frag', rules), 'https://shop.example.com/b#frag')
})

t.test('absolute URLs on allowed origins are kept', async (t) => {
  t.equal(resolveReturnTo('https://b2b.example.com/cart', rules), 'https://b2b.example.com/cart')
  t.equal(resolveReturnTo('HTTPS://SHOP.EXAMPLE.COM/x', rules), 'https://shop.example.com/x')
})

t.test('nothing given lands on FRONTEND_URL', async (t) => {
  t.equal(resolveReturnTo(undefined, rules), rules.frontendUrl)
  t.equal(resolveReturnTo('', rules), rules.frontendUrl)
})

t.test('every off-site or unsafe target is replaced by FRONTEND_URL', async (t) => {
  const attacks = [
    '//evil.example',
    '//evil.example/x',
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    '/\r/evil.example',
    '/\n/evil.example',
    '/%0d%0aSet-Cookie:%20x=1'.replace('%0d%0a', '\r\n'),
    'https://evil.example',
    'https://shop.example.com@evil.example',
    'https://user:pw@shop.example.com/',
    'https:evil.example',
    'http://shop.example.com',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'evil.example',
    `/${'a'.repeat(5000)}`,
    `/${'a'.repeat(1024)}`,
    'https://shop.example.com.evil.example/',
  ]
  for (const attack of attacks) {
    t.equal(resolveReturnTo(attack, rules), rules.frontendUrl, JSON.stringify(attack))
  }
})

t.test('the dot-segment trap stays on our origin (security.md A-6)', async (t) => {
  for (const trap of ['/..//evil.example', '/.//evil.example', '/%2e%2e//evil.example']) {
    const target = new URL(resolveReturnTo(trap, rules))
    t.equal(target.origin, 'https://shop.example.com', trap)
  }
})
