/**
 * The demo stack in a real headless Chromium: what only a browser enforces — `SameSite` on the cross-site
 * return from the IdP, `HttpOnly`, CORS preflights with credentials, tabs sharing one cookie jar.
 * Chromium is Debian's (`apt-get install chromium`; `.ci/run` installs it). Without it this file fails.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { type Demo, startDemo } from '../dev/demo-stack.js'
import { freePort } from '../dev/net.js'
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.js'

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts')

// Each test has its own browser context (its own cookie jar): they run side by side, well inside the
// per-file timeout (package.json) even on a busy machine.
t.jobs = 6

if (!existsSync(CHROMIUM)) {
  t.fail(`Chromium is missing at ${CHROMIUM}: install it with "apt-get install -y chromium" (.ci/run does)`)
} else {
  await browserTests()
}

async function browserTests() {
  const [bffPort, shopPort, attackerPort] = await Promise.all([freePort(), freePort(), freePort()])
  const demo = await startDemo({ host: 'localhost', bffPort, shopPort, logLevel: 'silent' })
  t.teardown(() => demo.close())
  const attacker = await attackerSite(demo, attackerPort)
  t.teardown(() => closeServer(attacker))
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
  t.teardown(() => browser.close())
  const { ada, nora, rex, password } = demo.logins

  t.test('a member signs in through the IdP form, switches account, reads carts, logs out', async (t) => {
    const context = await freshContext(t, browser)
    const page = await context.newPage()
    const bffAnswers = recordBffAnswers(page, demo)
    await signIn(page, demo, ada.email, password)

    // The IdP and EPCC live on 127.0.0.1, another site: the Lax cookie went along on the return all the same.
    t.equal(page.url(), `${demo.shopUrl}/`, 'back on the storefront, signed in')
    t.equal(await text(page, '#member-name'), 'Ada Buyer')
    t.equal(await text(page, '#member-email'), ada.email)
    t.equal(await text(page, '#active-account'), 'Bluefuse Ltd', 'the first account EPCC listed is active')
    t.equal(await text(page, '#account-count'), '12')
    t.equal(await text(page, '#accounts-range'), 'Accounts 1–5 of 12')

    t.equal(await page.evaluate(() => document.cookie), '', 'document.cookie shows no session cookie')
    t.equal(await text(page, '#doc-cookie'), '""', 'nor did it when the page loaded')
    const cookie = await sessionCookie(context)
    t.ok(cookie, 'the browser holds the session cookie')
    t.match(cookie, { name: 'epcc-bff', domain: 'localhost', path: '/', httpOnly: true, sameSite: 'Lax' })
    t.same(
      (await context.cookies(demo.bffUrl)).map((c) => c.name),
      ['epcc-bff'],
      'one cookie for the BFF, nothing else',
    )
    const session = bffAnswers.find((a) => a.path === '/session' && a.status === 200)
    t.equal(session?.allowOrigin, demo.shopUrl, 'CORS answered the storefront by name')
    t.equal(session?.allowCredentials, 'true', '…with credentials')

    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'logged-in.png'), fullPage: true })

    await clickAndSettle(page, page.getByRole('button', { name: 'Acme Wholesale' }))
    t.equal(await text(page, '#active-account'), 'Acme Wholesale', 'switched on the first page')
    t.not((await sessionCookie(context))?.value, cookie?.value, 'a switch gives a new session id')

    await clickAndSettle(page, page.locator('#next-page'))
    t.equal(await text(page, '#accounts-range'), 'Accounts 6–10 of 12', 'the switcher pages')
    await clickAndSettle(page, page.getByRole('button', { name: 'Branch office 4' }))
    t.equal(await text(page, '#active-account'), 'Branch office 4', 'switched to an account on page 2')
    t.equal(
      await page.locator('#accounts button[aria-current]').textContent(),
      'Branch office 4',
      'the switcher marks the active account',
    )

    await clickAndSettle(page, page.locator('#carts'))
    t.equal(await text(page, '#carts-summary'), '0 cart(s) in Branch office 4', 'carts through the proxy')
    await clickAndSettle(page, page.locator('#new-cart'))
    t.equal(
      await text(page, '#carts-summary'),
      '1 cart(s) in Branch office 4: Cart of Branch office 4',
      'a cart created through the proxy belongs to the active account',
    )
    t.same(
      await page.locator('#carts-table tbody tr td:first-child').allTextContents(),
      ['Cart of Branch office 4'],
      'the carts show as a table',
    )
    t.notOk(await page.locator('#carts-out').isVisible(), 'the raw JSON stays folded')
    await page.locator('#carts-raw summary').click()
    t.match(await text(page, '#carts-out'), /^200\n/, 'and unfolds')
    await clickAndSettle(page, page.locator('#prev-page'))
    await clickAndSettle(page, page.getByRole('button', { name: 'Bluefuse Ltd' }))
    await clickAndSettle(page, page.locator('#carts'))
    t.equal(await text(page, '#carts-summary'), '0 cart(s) in Bluefuse Ltd', 'another account sees its own')

    const lastCookie = await sessionCookie(context)
    await clickAndSettle(page, page.locator('#logout'))
    t.equal(await page.evaluate(() => document.body.dataset.state), 'signed-out', 'logged out')
    t.ok(await page.locator('#signed-out-notice').isVisible(), 'with a signed-out notice')
    t.ok(await page.getByRole('button', { name: 'Sign in with Acme SSO' }).isVisible(), 'sign-in offered')
    t.equal(await sessionCookie(context), undefined, 'the cookie is gone from the browser')
    const replay = await context.request.get(`${demo.bffUrl}/session`, {
      headers: { 'X-CSRF': '1', Cookie: `epcc-bff=${lastCookie?.value}` },
    })
    t.equal(replay.status(), 401, 'the old session id resolves to nothing')
  })

  t.test('the three demo logins in a row, in one browser', async (t) => {
    const context = await freshContext(t, browser)
    const page = await context.newPage()
    await openStorefront(page, demo)
    await startSignIn(page)
    const listed = await page.locator('section[aria-label="Demo logins"] table code').allTextContents()
    t.same(listed, [ada.email, nora.email, rex.email], 'the IdP form lists the demo logins')
    await submitIdpForm(page, ada.email, password)
    await page.waitForURL(`${demo.shopUrl}/`)
    await page.waitForSelector('body[data-state="signed-in"]')
    t.equal(await text(page, '#member-name'), 'Ada Buyer', 'first: Ada')

    await clickAndSettle(page, page.locator('#logout'))
    t.ok(await page.locator('#signed-out-notice').isVisible(), 'logging out says so')
    t.match(await text(page, '#signed-out-notice'), /You are signed out/)

    // The IdP still remembers Ada: "Sign in as someone else" (prompt=login) must show its form again.
    await page.getByRole('button', { name: 'Sign in as someone else' }).click()
    await page.waitForSelector('#sign-in')
    await submitIdpForm(page, nora.email, password)
    await page.waitForURL(`${demo.shopUrl}/?error=no_accounts`)
    await page.waitForSelector('body[data-state="signed-out"]')
    t.equal(await text(page, '#error-code'), 'no_accounts', 'second: Nora, member of no account')

    await page.getByRole('button', { name: 'Sign in as someone else' }).click()
    await page.waitForSelector('#sign-in')
    await submitIdpForm(page, rex.email, password)
    await page.waitForURL(`${demo.shopUrl}/?error=access_denied`)
    await page.waitForSelector('body[data-state="signed-out"]')
    t.equal(await text(page, '#error-code'), 'access_denied', 'third: Rex, refused by the IdP')

    await page.getByRole('button', { name: 'Sign in as someone else' }).click()
    await page.waitForSelector('#sign-in')
    await submitIdpForm(page, ada.email, password)
    await page.waitForURL(`${demo.shopUrl}/`)
    await page.waitForSelector('body[data-state="signed-in"]')
    t.equal(await text(page, '#member-name'), 'Ada Buyer', 'and back to Ada')
  })

  t.test('two tabs signing in at the same time both end signed in', async (t) => {
    const context = await freshContext(t, browser)
    const [first, second] = await Promise.all([context.newPage(), context.newPage()])
    await Promise.all([first, second].map((tab) => openStorefront(tab, demo)))
    // Both logins pending at once in one browser: each tab starts its own, then each completes. The IdP forms
    // are sent one after the other: the dev IdP (oidc-provider) finishing two interactions of one browser
    // session in the same instant is its race, not the BFF's (it made this test time out now and then under
    // load). The starts go one after the other too: a browser without a cookie that starts two at the same
    // instant gets two pre-login sessions, and the last Set-Cookie wins (docs/sessions.md, known limit).
    await startSignIn(first)
    await startSignIn(second)
    await submitIdpForm(first, ada.email, password)
    await first.waitForURL(`${demo.shopUrl}/`)
    await first.waitForSelector('body[data-state="signed-in"]')
    await submitIdpForm(second, ada.email, password)
    await second.waitForURL(`${demo.shopUrl}/**`)
    await second.waitForSelector('body[data-state="signed-in"], body[data-state="signed-out"]')
    for (const [i, tab] of [first, second].entries()) {
      t.equal(new URL(tab.url()).searchParams.get('error'), null, `tab ${i + 1}: no login error`)
      t.equal(await text(tab, '#member-name'), 'Ada Buyer', `tab ${i + 1}: signed in`)
    }
    await Promise.all([first, second].map((tab) => openStorefront(tab, demo)))
    for (const [i, tab] of [first, second].entries()) {
      t.equal(
        await tab.evaluate(() => document.body.dataset.state),
        'signed-in',
        `tab ${i + 1}: still signed in after a reload`,
      )
    }
  })

  t.test('the IdP refusing the user shows access_denied', async (t) => {
    const page = await (await freshContext(t, browser)).newPage()
    await openStorefront(page, demo)
    await startSignIn(page)
    await submitIdpForm(page, rex.email, password)
    await page.waitForURL(`${demo.shopUrl}/?error=access_denied`)
    await page.waitForSelector('body[data-state="signed-out"]')
    t.ok(await page.locator('#error').isVisible(), 'an error is shown')
    t.equal(await text(page, '#error-code'), 'access_denied')
    t.match(await text(page, '#error-message'), /declined the sign-in/)
  })

  t.test('a member of no account sees no_accounts', async (t) => {
    const page = await (await freshContext(t, browser)).newPage()
    await openStorefront(page, demo)
    await startSignIn(page)
    await submitIdpForm(page, nora.email, password)
    await page.waitForURL(`${demo.shopUrl}/?error=no_accounts`)
    await page.waitForSelector('body[data-state="signed-out"]')
    t.equal(await text(page, '#error-code'), 'no_accounts')
    t.match(await text(page, '#error-message'), /not a member of any account/)
  })

  t.test('a page on another origin can neither read nor change the session', async (t) => {
    const context = await freshContext(t, browser)
    const victim = await context.newPage()
    await signIn(victim, demo, ada.email, password)
    await clickAndSettle(victim, victim.getByRole('button', { name: 'Northwind Trading' }))
    const before = await sessionCookie(context)
    const target = demo.logins.ada.accounts[1]?.id ?? ''

    // Same site, other port: the Lax cookie goes along, so the BFF's own checks must refuse.
    // Another site: the browser does not even send the cookie.
    for (const origin of [`http://localhost:${attackerPort}`, `http://127.0.0.1:${attackerPort}`]) {
      t.test(`from ${origin}`, async (t) => {
        const page = await context.newPage()
        const wire = await watchBff(context, page, demo.bffUrl)
        await page.goto(`${origin}/?account=${target}`)
        await page.waitForFunction(() => (window as { done?: boolean }).done === true)
        const results = await page.evaluate(() => (window as { results?: Record<string, string> }).results)
        const { 'POST /auth/logout no-cors': noCors, ...credentialed } = results ?? {}
        t.same(
          credentialed,
          {
            'GET /session with X-CSRF': 'TypeError',
            'GET /session without X-CSRF': 'TypeError',
            'PUT /session/active-account with X-CSRF': 'TypeError',
            'PUT /session/active-account without X-CSRF': 'TypeError',
            'POST /auth/logout with X-CSRF': 'TypeError',
            'POST /auth/logout without X-CSRF': 'TypeError',
          },
          'every credentialed fetch fails in the script',
        )
        // Opaque same-site; cross-site, Cross-Origin-Resource-Policy withholds even the opaque answer.
        t.match(noCors, /^(opaque|TypeError)$/, 'a no-cors fetch gets nothing readable')

        // A fetch is reported with the cookie it carried (CDP's request ExtraInfo). A form's post runs as the
        // navigation of a frame, cross-site in a process of its own, whose ExtraInfo now and then never reaches
        // this page's CDP session (CI saw it once in many runs): a form counts once its status is known.
        const known = (x: Exchange) =>
          x.status !== undefined && (x.kind === 'Document' || x.cookieSent !== undefined)
        const reached = await eventually(() => wire().filter((x) => x.method !== 'OPTIONS' && known(x)), 6)
        t.same(
          reached.map((x) => `${x.method} ${x.path} → ${x.status}`).sort(),
          [
            'GET /session → 403',
            'POST /auth/logout → 403',
            'POST /auth/logout → 403',
            'POST /auth/logout → 403',
            'POST /session/active-account → 404',
            'POST /session/active-account → 404',
          ],
          'what reached the BFF was refused (csrf; a form cannot PUT), and no preflighted call was sent',
        )
        const sameSite = new URL(origin).hostname === 'localhost'
        const fetches = reached.filter((x) => x.kind !== 'Document')
        t.equal(fetches.length, 3, 'three fetches reached the BFF')
        t.ok(
          fetches.every((x) => x.cookieSent === sameSite) &&
            reached.every((x) => x.cookieSent === sameSite || x.cookieSent === undefined),
          sameSite ? 'the session cookie went along each time' : 'the browser never sent the session cookie',
        )
        const preflights = wire().filter((x) => x.method === 'OPTIONS')
        t.equal(preflights.length, 4, 'four calls needed a preflight')
        t.same(
          wire().filter((x) => x.allowOrigin !== undefined),
          [],
          'no answer carries Access-Control-Allow-Origin',
        )
        const refused = await eventually(() => wire().filter((x) => x.corsError), 6)
        t.same(
          refused.map((x) => x.corsError).sort(),
          [
            'MissingAllowOriginHeader',
            'MissingAllowOriginHeader',
            'PreflightMissingAllowOriginHeader',
            'PreflightMissingAllowOriginHeader',
            'PreflightMissingAllowOriginHeader',
            'PreflightMissingAllowOriginHeader',
          ],
          'Chromium failed each credentialed fetch on CORS',
        )
        await page.close()
      })
    }
    t.test('changes nothing', async (t) => {
      t.same(await sessionCookie(context), before, 'the victim keeps its session cookie')
      await openStorefront(victim, demo)
      t.equal(await victim.evaluate(() => document.body.dataset.state), 'signed-in', 'still signed in')
      t.equal(await text(victim, '#active-account'), 'Northwind Trading', 'same active account')
    })
  })

  t.test('CORS with credentials answers the storefront and no one else', async (t) => {
    const context = await freshContext(t, browser)
    const preflight = (origin: string) =>
      context.request.fetch(`${demo.bffUrl}/session/active-account`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'PUT',
          'Access-Control-Request-Headers': 'content-type,x-csrf',
        },
      })
    const shop = await preflight(demo.shopUrl)
    t.equal(shop.headers()['access-control-allow-origin'], demo.shopUrl)
    t.equal(shop.headers()['access-control-allow-credentials'], 'true')
    t.match(shop.headers()['access-control-allow-headers'] ?? '', /x-csrf/i)
    for (const origin of [
      `http://localhost:${attackerPort}`,
      `http://127.0.0.1:${attackerPort}`,
      `http://127.0.0.1:${shopPort}`,
      'null',
    ]) {
      const answer = await preflight(origin)
      t.equal(answer.headers()['access-control-allow-origin'], undefined, `no grant for ${origin}`)
      const get = await context.request.get(`${demo.bffUrl}/session`, {
        headers: { Origin: origin, 'X-CSRF': '1' },
      })
      t.equal(get.status(), 403, `${origin} with X-CSRF: 403`)
      t.equal(get.headers()['access-control-allow-origin'], undefined, `…and no grant for ${origin}`)
    }

    // In the browser: the same credentialed call, from the storefront and from another origin.
    const readProfiles = async (bff: string) => {
      try {
        const response = await fetch(`${bff}/auth/profiles`, {
          credentials: 'include',
          headers: { 'X-CSRF': '1' },
        })
        const body = (await response.json()) as { data: Array<{ name: string }> }
        return `${response.status} ${body.data.map((p) => p.name).join()}`
      } catch (err) {
        return String(err)
      }
    }
    const shopPage = await context.newPage()
    await openStorefront(shopPage, demo)
    t.equal(await shopPage.evaluate(readProfiles, demo.bffUrl), '200 Acme SSO', 'the storefront reads it')
    const page = await context.newPage()
    const wire = await watchBff(context, page, demo.bffUrl)
    await page.goto(`http://localhost:${attackerPort}/blank`)
    t.equal(
      await page.evaluate(readProfiles, demo.bffUrl),
      'TypeError: Failed to fetch',
      'another origin cannot even read the public profiles',
    )
    const refused = await eventually(() => wire().filter((x) => x.corsError), 1)
    t.same(
      refused.map((x) => `${x.method} ${x.corsError}`),
      ['GET PreflightMissingAllowOriginHeader'],
      'Chromium stopped it at the preflight',
    )
    t.same(
      wire().filter((x) => x.allowOrigin !== undefined),
      [],
      'which granted nothing',
    )
  })
}

interface BffAnswer {
  method: string
  path: string
  status: number
  allowOrigin?: string
  allowCredentials?: string
}

/** Every response the page receives from the BFF, with its CORS headers. */
function recordBffAnswers(page: Page, demo: Demo): BffAnswer[] {
  const answers: BffAnswer[] = []
  page.on('response', (response) => {
    const url = new URL(response.url())
    if (url.origin !== demo.bffUrl) return
    const headers = response.headers()
    answers.push({
      method: response.request().method(),
      path: url.pathname,
      status: response.status(),
      allowOrigin: headers['access-control-allow-origin'],
      allowCredentials: headers['access-control-allow-credentials'],
    })
  })
  return answers
}

interface Exchange {
  url: string
  method: string
  path: string
  /** CDP's resource type: `Document` (a form post), `Fetch`, `Preflight`. */
  kind: string
  status?: number
  allowOrigin?: string
  cookieSent?: boolean
  corsError?: string
}

/** Reads every request `page` sent to the BFF so far, as Chromium's network stack saw it (preflights too). */
async function watchBff(context: BrowserContext, page: Page, bffUrl: string): Promise<() => Exchange[]> {
  const cdp = await context.newCDPSession(page)
  const byId = new Map<string, Exchange>()
  // CDP's ExtraInfo events may come before or after the main event of the same request.
  const get = (id: string): Exchange => {
    const known = byId.get(id)
    if (known) return known
    const fresh = { url: '', method: '', path: '', kind: '' }
    byId.set(id, fresh)
    return fresh
  }
  cdp.on('Network.requestWillBeSent', (e) => {
    const x = get(e.requestId)
    x.url = e.request.url
    x.method = e.request.method
    x.path = new URL(e.request.url).pathname
    x.kind = e.request.method === 'OPTIONS' ? 'Preflight' : (e.type ?? 'Other')
  })
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    const cookie = Object.entries(e.headers).find(([k]) => k.toLowerCase() === 'cookie')?.[1] ?? ''
    get(e.requestId).cookieSent = /(^|; )epcc-bff=/.test(cookie)
  })
  cdp.on('Network.responseReceivedExtraInfo', (e) => {
    const x = get(e.requestId)
    x.status = e.statusCode
    x.allowOrigin = Object.entries(e.headers).find(
      ([k]) => k.toLowerCase() === 'access-control-allow-origin',
    )?.[1]
  })
  // The main event carries the status too: under load its ExtraInfo twin can come late (or, for a frame's
  // navigation, not at all), and the test must not depend on which of the two arrives.
  cdp.on('Network.responseReceived', (e) => {
    const x = get(e.requestId)
    x.status ??= e.response.status
  })
  cdp.on('Network.loadingFailed', (e) => {
    if (e.corsErrorStatus) get(e.requestId).corsError = e.corsErrorStatus.corsError
  })
  await cdp.send('Network.enable')
  return () => [...byId.values()].filter((x) => x.url.startsWith(`${bffUrl}/`))
}

/** Polls `read` until it returns `count` items (page events arrive a little after the page's own). */
async function eventually<T>(read: () => T[], count: number, timeoutMs = 20_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs
  while (read().length < count && Date.now() < deadline) await sleep(20)
  return read()
}

async function freshContext(t: Test, browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  return context
}

async function openStorefront(page: Page, demo: Demo) {
  await page.goto(demo.shopUrl)
  await page.waitForSelector('body[data-state="signed-in"], body[data-state="signed-out"]')
}

async function startSignIn(page: Page) {
  await page.getByRole('button', { name: 'Sign in with Acme SSO' }).click()
  await page.waitForSelector('#sign-in')
}

async function submitIdpForm(page: Page, email: string, password: string) {
  await page.fill('input[name="email"]', email)
  await page.fill('input[name="password"]', password)
  await page.click('#sign-in')
}

async function signIn(page: Page, demo: Demo, email: string, password: string) {
  await openStorefront(page, demo)
  await startSignIn(page)
  await submitIdpForm(page, email, password)
  await page.waitForURL(`${demo.shopUrl}/`)
  await page.waitForSelector('body[data-state="signed-in"]')
}

/** Clicks, then waits for the storefront to finish the work the click started. */
async function clickAndSettle(page: Page, target: ReturnType<Page['locator']>) {
  await target.click()
  await page.waitForSelector('body:not([data-state="busy"]):not([data-state="loading"])')
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector))?.trim() ?? ''
}

async function sessionCookie(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === 'epcc-bff')
}

/**
 * The attacker: a page that, on load, tries credentialed `fetch`es (with and without `X-CSRF`) and
 * auto-submits forms against the session and logout endpoints, into hidden frames.
 */
async function attackerSite(demo: Demo, port: number): Promise<Server> {
  const bff = demo.bffUrl
  const page = `<!doctype html><meta charset="utf-8"><title>Free prizes</title>
<iframe name="switch-form"></iframe><iframe name="switch-json"></iframe><iframe name="logout-form"></iframe>
<form id="f1" method="post" target="switch-form" action="${bff}/session/active-account">
  <input name="accountId" id="account-field"></form>
<form id="f2" method="post" target="switch-json" enctype="text/plain" action="${bff}/session/active-account">
  <input id="json-field"></form>
<form id="f3" method="post" target="logout-form" action="${bff}/auth/logout"></form>
<script>
  const bff = ${JSON.stringify(bff)}
  const account = new URLSearchParams(location.search).get('account')
  const json = JSON.stringify({ accountId: account })
  const attempt = async (init) => {
    try { const r = await fetch(bff + init.path, { credentials: 'include', ...init }); return r.type === 'opaque' ? 'opaque' : 'status ' + r.status }
    catch (err) { return err.name }
  }
  window.results = {}
  const run = async () => {
    const csrf = { 'X-CSRF': '1' }
    const attempts = {
      'GET /session with X-CSRF': { path: '/session', headers: csrf },
      'GET /session without X-CSRF': { path: '/session' },
      'PUT /session/active-account with X-CSRF': { path: '/session/active-account', method: 'PUT', headers: { ...csrf, 'Content-Type': 'application/json' }, body: json },
      'PUT /session/active-account without X-CSRF': { path: '/session/active-account', method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: json },
      'POST /auth/logout with X-CSRF': { path: '/auth/logout', method: 'POST', headers: csrf },
      'POST /auth/logout without X-CSRF': { path: '/auth/logout', method: 'POST' },
      'POST /auth/logout no-cors': { path: '/auth/logout', method: 'POST', mode: 'no-cors' },
    }
    for (const [name, init] of Object.entries(attempts)) window.results[name] = await attempt(init)
    document.getElementById('account-field').value = account
    // text/plain JSON smuggling: the body reads {"accountId":"…","x":"="}
    const field = document.getElementById('json-field')
    field.name = '{"accountId":' + JSON.stringify(account) + ',"x":"'
    field.value = '"}'
    const loads = ['switch-form', 'switch-json', 'logout-form'].map((name) =>
      new Promise((resolve) => document.querySelector('iframe[name="' + name + '"]').addEventListener('load', resolve, { once: true })))
    for (const id of ['f1', 'f2', 'f3']) document.getElementById(id).submit()
    await Promise.all(loads)
    window.done = true
  }
  if (location.pathname !== '/blank') run()
</script>`
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return server
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
