import { type ConfigOptions, gateway, MemoryStorageFactory } from '@elasticpath/js-sdk'
import {
  createACart,
  createClient,
  getCarts,
  getV2AccountMembersAccountMemberId,
  getV2AccountsAccountId,
  manageCarts,
} from '@epcc-sdk/sdks-shopper'
import t, { type Test } from 'tap'
import type { Browser } from './support/browser.js'
import { signedIn } from './support/flows.js'
import { type Stack, secretsSeen, startStack } from './support/stack.js'

/**
 * The official Elastic Path SDKs pointed at the BFF, configured exactly as docs/elastic-path-sdks.md says. In
 * Node the test browser's fetch stands in for the browser's own (it keeps the session cookie); in a browser
 * `credentials: 'include'` does that (see sdks-browser.test.ts).
 */

/** What reached EPCC through the proxy (not the BFF's own calls). */
const proxied = (stack: Stack) =>
  stack.sim.log.filter(
    (r) => !r.path.startsWith('/oauth/') && !r.path.startsWith('/v2/account-members/tokens'),
  )

/** `fetch(Request)` for the shopper SDK, through the test browser (its cookie jar). */
const viaBrowser =
  (browser: Browser) =>
  async (request: Request): Promise<Response> =>
    browser.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body ? { body: await request.arrayBuffer() } : {}),
    })

interface Observed {
  cartsListed: number
  cartId: string
  itemCurrency: string | undefined
  accountName: string | undefined
  memberEmail: string | undefined
}

t.test('@epcc-sdk/sdks-shopper through the BFF', async (t) => {
  const stack = await startStack(t)
  const { browser, member } = await signedIn(stack, 2)
  stack.sim.clearLog()

  // docs/elastic-path-sdks.md, "@epcc-sdk/sdks-shopper" (plus `fetch`: the Node stand-in for the browser).
  const client = createClient({
    baseUrl: `${stack.bff}/api/epcc`,
    credentials: 'include',
    headers: { 'X-CSRF': '1', 'EP-Channel': 'web', 'X-Moltin-Currency': 'EUR' },
    fetch: viaBrowser(browser),
  })

  const before = await getCarts({ client })
  t.equal(before.response.status, 200, 'list carts')
  const created = await createACart({ client, body: { data: { name: 'SDK cart' } } })
  t.equal(created.response.status, 200, 'create a cart')
  const cartId = created.data?.data?.id ?? ''
  const added = await manageCarts({
    client,
    path: { cartID: cartId },
    body: { data: { type: 'cart_item', sku: 'MUG-001', quantity: 1 } },
  })
  t.equal(added.response.status, 201, 'add an item')
  const after = await getCarts({ client })
  const account = await getV2AccountsAccountId({ client, path: { accountID: member.accounts[0]?.id ?? '' } })
  const me = await getV2AccountMembersAccountMemberId({ client, path: { accountMemberID: member.id } })

  const observed: Observed = {
    cartsListed: (after.data?.data ?? []).length - (before.data?.data ?? []).length,
    cartId,
    itemCurrency: (added.data as { data?: Array<{ value?: { currency?: string } }> })?.data?.[0]?.value
      ?.currency,
    accountName: (account.data as { data?: { name?: string } })?.data?.name,
    memberEmail: (me.data as { data?: { email?: string } })?.data?.email,
  }
  t.same(observed, {
    cartsListed: 1,
    cartId,
    itemCurrency: 'EUR',
    accountName: member.accounts[0]?.name,
    memberEmail: member.email,
  })
  assertArrivals(t, stack, member.accounts[0]?.id)
})

t.test('@elasticpath/js-sdk through the BFF', async (t) => {
  const stack = await startStack(t)
  const { browser, member } = await signedIn(stack, 2)
  stack.sim.clearLog()
  const bff = new URL(stack.bff)

  // docs/elastic-path-sdks.md, "@elasticpath/js-sdk" (its `custom_fetch` uses the test browser in Node).
  const options = {
    client_id: 'not-used-by-the-bff',
    host: `${bff.host}/api/epcc`,
    protocol: 'http',
    currency: 'EUR',
    headers: { 'X-CSRF': '1', 'EP-Channel': 'web' },
    // The BFF holds the real token: the SDK gets a placeholder, which the proxy replaces.
    custom_authenticator: async () => ({ access_token: 'placeholder', expires: 4102444800 }),
    custom_fetch: (url: string, init: RequestInit) => browser.fetch(url, { ...init, credentials: 'include' }),
    storage: new MemoryStorageFactory(),
  }
  const ep = gateway(options as ConfigOptions)

  const before = await ep.Cart().GetCartsList()
  const created = await ep.Cart().CreateCart({ name: 'SDK cart' })
  const cartId = created.data.id
  const added = await ep.Cart(cartId).AddProduct('MUG-001', 1, {}, true)
  const after = await ep.Cart().GetCartsList()
  const account = await ep.Accounts.Get(member.accounts[0]?.id ?? '')
  const me = await ep.AccountMembers.Get(member.id)

  const observed: Observed = {
    cartsListed: after.data.length - before.data.length,
    cartId,
    itemCurrency: (added.data[0] as { value?: { currency?: string } } | undefined)?.value?.currency,
    accountName: account.data.name,
    memberEmail: me.data.email,
  }
  t.same(observed, {
    cartsListed: 1,
    cartId,
    itemCurrency: 'EUR',
    accountName: member.accounts[0]?.name,
    memberEmail: member.email,
  })
  t.equal(stack.sim.calls('POST', '/oauth/access_token').length, 0, 'the SDK asked EPCC for no token')
  assertArrivals(t, stack, member.accounts[0]?.id)
})

/** Every proxied call carried the selectors, the store's token and the active account's token, not the SDK's. */
function assertArrivals(t: Test, stack: Stack, accountId: string | undefined): void {
  const calls = proxied(stack)
  t.ok(calls.length >= 6, `${calls.length} calls reached EPCC`)
  for (const call of calls) {
    const what = `${call.method} ${call.path}`
    t.equal(call.headers['ep-channel'], 'web', `${what}: EP-Channel arrived`)
    t.equal(call.headers['x-moltin-currency'], 'EUR', `${what}: X-Moltin-Currency arrived`)
    t.match(
      call.headers.authorization,
      /^Bearer [0-9a-f]{40}$/,
      `${what}: the store token, not the placeholder`,
    )
    const claims = JSON.parse(
      Buffer.from(
        call.headers['ep-account-management-authentication-token']?.split('.')[1] ?? '',
        'base64url',
      ).toString('utf8') || '{}',
    ) as { scope?: string }
    t.equal(claims.scope, accountId, `${what}: the active account's token`)
  }
  for (const secret of secretsSeen(stack.sim)) t.notOk(stack.logs.text.includes(secret), 'a token in the log')
}
