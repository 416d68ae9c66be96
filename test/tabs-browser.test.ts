/**
 * Tabs in a real headless Chromium: one tab's proxied call is in flight (held at EPCC by the simulator)
 * while another tab switches account. The late answer must not sign the browser out — it is
 * `401 session_replaced` with no cookie change — and after one retry both tabs work. Chromium is Debian's
 * (`apt-get install chromium`; `.ci/run` installs it). Without it this file fails.
 */
import { existsSync } from 'node:fs'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import { startDemo } from '../dev/demo-stack.js'
import { freePort } from '../dev/net.js'
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.js'
import { startFront } from './support/front.js'

interface Answer {
  status: number
  error?: string
}

/** A storefront `fetch` from `page` to the BFF, with credentials and `X-CSRF`, as the storefront sends it. */
function call(page: Page, url: string, init: { method?: string; body?: string } = {}): Promise<Answer> {
  return page.evaluate(
    async ({ url, init }) => {
      const response = await fetch(url, {
        ...init,
        credentials: 'include',
        headers: { 'x-csrf': '1', ...(init.body ? { 'content-type': 'application/json' } : {}) },
      })
      const body = (await response.json().catch(() => ({}))) as { error?: string }
      return { status: response.status, error: body.error }
    },
    { url, init },
  )
}

if (!existsSync(CHROMIUM)) {
  t.fail(`Chromium is missing at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does)`)
} else {
  const [bffPort, shopPort] = await Promise.all([freePort(), freePort()])
  const demo = await startDemo({ host: 'localhost', bffPort, shopPort, logLevel: 'silent' })
  t.teardown(() => demo.close())
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  t.teardown(() => browser.close())

  t.test(
    'a switch in one tab while another tab’s call is in flight: both tabs work afterwards',
    async (t) => {
      const context = await browser.newContext()
      t.teardown(() => context.close())
      const first = await context.newPage()
      // Sign in through the BFF and the dev IdP's form, back to the storefront.
      await first.goto(`${demo.bffUrl}/auth/login`)
      await first.fill('input[name="email"]', demo.logins.ada.email)
      await first.fill('input[name="password"]', demo.logins.password)
      await first.click('#sign-in')
      await first.waitForURL(`${demo.shopUrl}/**`)
      const second = await context.newPage()
      await second.goto(demo.shopUrl)

      const before = await call(first, `${demo.bffUrl}/session`)
      t.equal(before.status, 200, 'signed in')
      const accounts = (await first.evaluate(async (url) => {
        const r = await fetch(url, { credentials: 'include', headers: { 'x-csrf': '1' } })
        return ((await r.json()) as { data: Array<{ id: string }> }).data.map((a) => a.id)
      }, `${demo.bffUrl}/session/accounts`)) as string[]

      // The second tab's cart call leaves with the cookie the browser holds now and is held on its way (as a
      // slow network would) by a front on another port of the same host — cookies ignore ports — until the
      // first tab has switched account: it reaches the BFF with a replaced id.
      let release = () => {}
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      let arrived = () => {}
      const held = new Promise<void>((resolve) => {
        arrived = resolve
      })
      const slowPort = await freePort()
      const slow = await startFront(slowPort, () => [demo.bffUrl], {
        proto: 'http',
        host: 'localhost',
        // The call itself, not its CORS preflight.
        hold: (method, path) => {
          if (method !== 'GET' || !path.startsWith('/api/epcc/v2/carts')) return undefined
          arrived()
          return released
        },
      })
      t.teardown(() => slow.close())
      const inFlight = call(second, `http://localhost:${slowPort}/api/epcc/v2/carts`)
      await held
      const switched = await call(first, `${demo.bffUrl}/session/active-account`, {
        method: 'PUT',
        body: JSON.stringify({ accountId: accounts[1] }),
      })
      t.equal(switched.status, 200, 'the first tab switched')
      release()
      t.same(await inFlight, { status: 401, error: 'session_replaced' }, 'the late call is told to retry')
      const cookies = await context.cookies(demo.bffUrl)
      t.equal(cookies.filter((c) => c.name === 'epcc-bff').length, 1, 'the browser still holds its cookie')
      t.same(
        await call(second, `${demo.bffUrl}/api/epcc/v2/carts`),
        { status: 200, error: undefined },
        'the retry works',
      )

      for (const [name, page] of [
        ['first', first],
        ['second', second],
      ] as const) {
        const session = await call(page, `${demo.bffUrl}/session`)
        t.equal(session.status, 200, `${name} tab: signed in`)
        const carts = await call(page, `${demo.bffUrl}/api/epcc/v2/carts`)
        t.equal(carts.status, 200, `${name} tab: the proxy works`)
      }
      t.same(await context.cookies(demo.bffUrl).then((c) => c.map((x) => x.name)), ['epcc-bff'])
    },
  )
}
