/**
 * The official Elastic Path SDKs in a real headless Chromium, on the demo storefront's origin (another origin
 * than the BFF's): CORS preflights for their headers, the session cookie sent with `credentials: 'include'`,
 * and what reaches EPCC. Configured exactly as docs/elastic-path-sdks.md says. Chromium is Debian's
 * (`apt-get install chromium`; `.ci/run` installs it). Without it this file fails.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { type Demo, startDemo } from '../dev/demo-stack.js'
import type { SimRequest } from '../dev/epcc-sim/index.js'
import { freePort } from '../dev/net.js'
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.js'

const MODULES = join(import.meta.dirname, '..', 'node_modules')

interface Observed {
  cartsListed: number
  itemCurrency: string | undefined
  accountName: string | undefined
  memberEmail: string | undefined
}

if (!existsSync(CHROMIUM)) {
  t.fail(`Chromium is missing at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does)`)
} else {
  await sdkTests()
}

async function sdkTests() {
  const [bffPort, shopPort] = await Promise.all([freePort(), freePort()])
  const demo = await startDemo({ host: 'localhost', bffPort, shopPort, logLevel: 'silent' })
  t.teardown(() => demo.close())
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  t.teardown(() => browser.close())

  /** A signed-in page on the storefront, with the SDKs served from its origin. */
  const signedInPage = async (t: Test): Promise<Page> => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    await serveSdks(page)
    await page.goto(demo.shopUrl)
    await page.getByRole('button', { name: 'Sign in with Acme SSO' }).click()
    await page.fill('input[name="email"]', demo.logins.ada.email)
    await page.fill('input[name="password"]', demo.logins.password)
    await page.click('#sign-in')
    await page.waitForURL(`${demo.shopUrl}/`)
    await page.waitForSelector('body[data-state="signed-in"]')
    demo.sim.clearLog()
    return page
  }

  t.test("the demo page's currency picker: a new cart is priced in it at EPCC", async (t) => {
    const page = await signedInPage(t)
    await page.selectOption('#currency', 'EUR')
    await page.click('#new-cart')
    await page.waitForFunction(() => document.querySelector('#carts-out')?.textContent?.startsWith('200'))
    const created = demo.sim.calls('POST', '/v2/carts')
    t.equal(created.length, 1)
    t.equal(created[0]?.headers['x-moltin-currency'], 'EUR', 'sent as X-Moltin-Currency')
    const listed = JSON.parse(
      (await page.textContent('#carts-out'))?.split('\n').slice(1).join('\n') ?? '{}',
    ) as {
      data?: Array<{ meta: { display_price: { with_tax: { currency: string } } } }>
    }
    t.same(
      listed.data?.map((c) => c.meta.display_price.with_tax.currency),
      ['EUR'],
      "the simulator's cart carries it",
    )
  })

  t.test('@epcc-sdk/sdks-shopper in Chromium, cross-origin', async (t) => {
    const page = await signedInPage(t)
    const observed = await page.evaluate(async (bff: string): Promise<Observed> => {
      type Sdk = typeof import('@epcc-sdk/sdks-shopper')
      const sdk: Sdk = await import(`${location.origin}/sdk/shopper/index.mjs`)
      // docs/elastic-path-sdks.md, "@epcc-sdk/sdks-shopper"
      const client = sdk.createClient({
        baseUrl: `${bff}/api/epcc`,
        credentials: 'include',
        headers: { 'X-CSRF': '1', 'EP-Channel': 'web', 'X-Moltin-Currency': 'EUR' },
      })
      const session = (await (
        await fetch(`${bff}/session`, { credentials: 'include', headers: { 'X-CSRF': '1' } })
      ).json()) as { member: { id: string }; activeAccount: { id: string } }
      const before = await sdk.getCarts({ client })
      const created = await sdk.createACart({ client, body: { data: { name: 'SDK cart' } } })
      const added = await sdk.manageCarts({
        client,
        path: { cartID: created.data?.data?.id ?? '' },
        body: { data: { type: 'cart_item', sku: 'MUG-001', quantity: 1 } },
      })
      const after = await sdk.getCarts({ client })
      const account = await sdk.getV2AccountsAccountId({
        client,
        path: { accountID: session.activeAccount.id },
      })
      const me = await sdk.getV2AccountMembersAccountMemberId({
        client,
        path: { accountMemberID: session.member.id },
      })
      return {
        cartsListed: (after.data?.data ?? []).length - (before.data?.data ?? []).length,
        itemCurrency: (added.data as { data?: Array<{ value?: { currency?: string } }> })?.data?.[0]?.value
          ?.currency,
        accountName: (account.data as { data?: { name?: string } })?.data?.name,
        memberEmail: (me.data as { data?: { email?: string } })?.data?.email,
      }
    }, demo.bffUrl)
    t.same(observed, {
      cartsListed: 1,
      itemCurrency: 'EUR',
      accountName: 'Bluefuse Ltd',
      memberEmail: demo.logins.ada.email,
    })
    assertArrivals(t, demo)
  })

  t.test('@elasticpath/js-sdk in Chromium, cross-origin', async (t) => {
    const page = await signedInPage(t)
    await page.addScriptTag({ url: `${demo.shopUrl}/sdk/js-sdk.js` })
    const observed = await page.evaluate(async (bff: string): Promise<Observed> => {
      type Sdk = typeof import('@elasticpath/js-sdk')
      // The SDK's browser build (UMD) names its global `index`.
      const { gateway } = (window as unknown as { index: Sdk }).index
      const session = (await (
        await fetch(`${bff}/session`, { credentials: 'include', headers: { 'X-CSRF': '1' } })
      ).json()) as { member: { id: string }; activeAccount: { id: string } }
      // docs/elastic-path-sdks.md, "@elasticpath/js-sdk"
      const options = {
        client_id: 'not-used-by-the-bff',
        host: `${new URL(bff).host}/api/epcc`,
        protocol: 'http',
        currency: 'EUR',
        headers: { 'X-CSRF': '1', 'EP-Channel': 'web' },
        custom_authenticator: async () => ({ access_token: 'placeholder', expires: 4102444800 }),
        custom_fetch: (url: string, init: RequestInit) => fetch(url, { ...init, credentials: 'include' }),
      }
      const ep = gateway(options as Parameters<Sdk['gateway']>[0])
      const before = await ep.Cart().GetCartsList()
      const created = await ep.Cart().CreateCart({ name: 'SDK cart' })
      const added = await ep.Cart(created.data.id).AddProduct('MUG-001', 1, {}, true)
      const after = await ep.Cart().GetCartsList()
      const account = await ep.Accounts.Get(session.activeAccount.id)
      const me = await ep.AccountMembers.Get(session.member.id)
      return {
        cartsListed: after.data.length - before.data.length,
        itemCurrency: (added.data[0] as { value?: { currency?: string } } | undefined)?.value?.currency,
        accountName: account.data.name,
        memberEmail: me.data.email,
      }
    }, demo.bffUrl)
    t.same(observed, {
      cartsListed: 1,
      itemCurrency: 'EUR',
      accountName: 'Bluefuse Ltd',
      memberEmail: demo.logins.ada.email,
    })
    t.equal(demo.sim.calls('POST', '/oauth/access_token').length, 0, 'the SDK asked EPCC for no token')
    assertArrivals(t, demo)
  })
}

/**
 * The SDKs as the storefront would bundle them, served from the storefront's origin: the shopper SDK's ESM
 * files (its one bare import pointed at the fetch client's file) and the js-sdk's browser build.
 */
async function serveSdks(page: Page): Promise<void> {
  await page.route('**/sdk/**', async (route) => {
    const path = new URL(route.request().url()).pathname
    let file: string | undefined
    if (path === '/sdk/js-sdk.js') file = join(MODULES, '@elasticpath/js-sdk/dist/index.js')
    else if (path === '/sdk/hey-api/index.js') file = join(MODULES, '@hey-api/client-fetch/dist/index.js')
    else if (path.startsWith('/sdk/shopper/') && !path.includes('..')) {
      file = join(MODULES, '@epcc-sdk/sdks-shopper/dist', path.slice('/sdk/shopper/'.length))
    }
    if (!file || !existsSync(file)) return route.fulfill({ status: 404, body: '' })
    const source = (await readFile(file, 'utf8')).replaceAll(
      '"@hey-api/client-fetch"',
      '"/sdk/hey-api/index.js"',
    )
    return route.fulfill({ status: 200, contentType: 'text/javascript', body: source })
  })
}

/** Every proxied call carried the selectors, the store's token and the active account's token. */
function assertArrivals(t: Test, demo: Demo): void {
  const calls = demo.sim.log.filter(
    (r: SimRequest) => !r.path.startsWith('/oauth/') && !r.path.startsWith('/v2/account-members/tokens'),
  )
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
    t.ok(call.headers['ep-account-management-authentication-token'], `${what}: the account token`)
  }
}
