/**
 * Representative shopper resources (epcc-api.md §1.10, §4.2): minimal in-memory carts, orders, accounts,
 * addresses and a catalog that check the implicit bearer and the account token the way EPCC does.
 */
import { randomUUID } from 'node:crypto'
import {
  accountToken,
  pageMeta,
  type Route,
  readPage,
  requireBearer,
  route,
  type SimContext,
} from './context.js'
import { isRecord, type Req, type Res, redirect, sendError, sendJson } from './http.js'

interface Product {
  id: string
  sku: string
  name: string
  amount: number
}

const PRODUCTS: Product[] = [
  { id: '9e5b4a6c-1f0d-4c1e-8a1b-0c3d2e1f0a01', sku: 'MUG-001', name: 'Enamel mug', amount: 1200 },
  { id: '9e5b4a6c-1f0d-4c1e-8a1b-0c3d2e1f0a02', sku: 'TEE-002', name: 'Organic tee', amount: 2500 },
  { id: '9e5b4a6c-1f0d-4c1e-8a1b-0c3d2e1f0a03', sku: 'CAP-003', name: 'Canvas cap', amount: 1800 },
]

interface CartItem {
  id: string
  product: Product
  quantity: number
}

interface Cart {
  id: string
  name: string
  description: string
  accountId: string | null
  items: CartItem[]
  /** From `X-Moltin-Currency` when the cart was created or got its first item; USD otherwise. */
  currency: string
  createdAt: string
  updatedAt: string
}

interface Order {
  id: string
  accountId: string
  memberId: string
  items: CartItem[]
  contact: unknown
  createdAt: string
}

interface Address {
  id: string
  accountId: string
  fields: Record<string, unknown>
  createdAt: string
}

/** Shopper data lives per simulator; a WeakMap keeps it out of the public state type. */
const stores = new WeakMap<
  SimContext['state'],
  { carts: Map<string, Cart>; orders: Order[]; addresses: Address[] }
>()
function data(ctx: SimContext) {
  let s = stores.get(ctx.state)
  if (!s) {
    s = { carts: new Map(), orders: [], addresses: [] }
    stores.set(ctx.state, s)
  }
  return s
}

// The catalogue has one price per product; the cart shows it in the cart's currency (no conversion).
const money = (amount: number, currency = 'USD') => ({
  amount,
  currency,
  formatted: `${currency === 'USD' ? '$' : `${currency} `}${(amount / 100).toFixed(2)}`,
})

/** `X-Moltin-Currency`, when it names a currency (three letters). */
function requestedCurrency(req: Req): string | undefined {
  const value = req.headers['x-moltin-currency']?.trim().toUpperCase()
  return value && /^[A-Z]{3}$/.test(value) ? value : undefined
}

function cartJson(ctx: SimContext, c: Cart) {
  const total = c.items.reduce((n, i) => n + i.product.amount * i.quantity, 0)
  return {
    id: c.id,
    type: 'cart',
    name: c.name,
    description: c.description,
    relationships: {
      items: { data: c.items.map((i) => ({ type: 'cart_item', id: i.id })) },
      ...(c.accountId ? { accounts: { data: [{ type: 'account', id: c.accountId }] } } : {}),
    },
    meta: {
      display_price: {
        with_tax: money(total, c.currency),
        without_tax: money(total, c.currency),
        tax: money(0, c.currency),
      },
      timestamps: { created_at: c.createdAt, updated_at: c.updatedAt },
    },
    links: { self: `${ctx.apiUrl}/v2/carts/${c.id}` },
  }
}

function itemJson(i: CartItem, currency = 'USD') {
  return {
    id: i.id,
    type: 'cart_item',
    product_id: i.product.id,
    sku: i.product.sku,
    name: i.product.name,
    quantity: i.quantity,
    unit_price: money(i.product.amount, currency),
    value: money(i.product.amount * i.quantity, currency),
  }
}

function orderJson(ctx: SimContext, o: Order) {
  const total = o.items.reduce((n, i) => n + i.product.amount * i.quantity, 0)
  return {
    id: o.id,
    type: 'order',
    status: 'incomplete',
    payment: 'unpaid',
    shipping: 'unfulfilled',
    account: { id: o.accountId, member_id: o.memberId },
    contact: o.contact,
    relationships: { items: { data: o.items.map((i) => ({ type: 'item', id: i.id })) } },
    meta: {
      display_price: { with_tax: money(total) },
      timestamps: { created_at: o.createdAt, updated_at: o.createdAt },
    },
    links: { self: `${ctx.apiUrl}/v2/orders/${o.id}` },
  }
}

function addressJson(ctx: SimContext, a: Address) {
  return {
    ...a.fields,
    id: a.id,
    type: 'address',
    meta: { timestamps: { created_at: a.createdAt, updated_at: a.createdAt } },
    links: { self: `${ctx.apiUrl}/v2/accounts/${a.accountId}/addresses/${a.id}` },
  }
}

const notFound = (ctx: SimContext, res: Res, what: string) =>
  sendError(res, ctx.state.quirks, 404, { detail: `${what} not found` })

/** Lists share the EPCC pagination envelope. */
function list<T>(ctx: SimContext, req: Req, res: Res, path: string, all: T[]) {
  const page = readPage(ctx, req, res, 25)
  if (!page) return
  sendJson(res, 200, {
    data: all.slice(page.offset, page.offset + page.limit),
    ...pageMeta(ctx, `${ctx.apiUrl}${path}`, page, all.length),
  })
}

/** The account a cart may be read by: anonymous carts are open to any bearer (the id is the secret). */
function cartFor(ctx: SimContext, req: Req, res: Res, id: string, create: boolean): Cart | undefined {
  if (!requireBearer(ctx, req, res)) return undefined
  const claims = accountToken(ctx, req, res, { required: false })
  if (claims === undefined) return undefined
  const carts = data(ctx).carts
  let cart = carts.get(id)
  if (!cart && create) {
    // EPCC creates a cart when an unknown reference is read.
    const now = ctx.state.isoNow()
    cart = {
      id,
      name: 'Cart',
      description: '',
      accountId: null,
      items: [],
      currency: requestedCurrency(req) ?? 'USD',
      createdAt: now,
      updatedAt: now,
    }
    carts.set(id, cart)
  }
  if (!cart || (cart.accountId && cart.accountId !== claims?.scope)) {
    notFound(ctx, res, 'cart')
    return undefined
  }
  return cart
}

function listCarts(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const mine = [...data(ctx).carts.values()]
    .filter((c) => c.accountId === claims.scope)
    .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))
    .map((c) => cartJson(ctx, c))
  list(ctx, req, res, '/v2/carts', mine)
}

function createCart(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: false })
  if (claims === undefined) return
  const body = isRecord(req.body) && isRecord(req.body.data) ? req.body.data : {}
  const now = ctx.state.isoNow()
  const cart: Cart = {
    id: randomUUID(),
    name: typeof body.name === 'string' ? body.name : 'Cart',
    description: typeof body.description === 'string' ? body.description : '',
    accountId: claims?.scope ?? null,
    items: [],
    currency: requestedCurrency(req) ?? 'USD',
    createdAt: now,
    updatedAt: now,
  }
  data(ctx).carts.set(cart.id, cart)
  sendJson(res, 200, { data: cartJson(ctx, cart) })
}

function getCart(ctx: SimContext, req: Req, res: Res, [id = '']: string[]) {
  const cart = cartFor(ctx, req, res, id, true)
  if (cart) sendJson(res, 200, { data: cartJson(ctx, cart) })
}

function cartItems(ctx: SimContext, req: Req, res: Res, [id = '']: string[]) {
  const cart = cartFor(ctx, req, res, id, true)
  if (cart) {
    sendJson(res, 200, {
      data: cart.items.map((i) => itemJson(i, cart.currency)),
      meta: cartJson(ctx, cart).meta,
    })
  }
}

function addCartItem(ctx: SimContext, req: Req, res: Res, [id = '']: string[]) {
  const cart = cartFor(ctx, req, res, id, true)
  if (!cart) return
  const body = isRecord(req.body) && isRecord(req.body.data) ? req.body.data : {}
  const product = PRODUCTS.find((p) => p.id === body.id || p.sku === body.sku)
  const quantity = typeof body.quantity === 'number' && body.quantity > 0 ? Math.floor(body.quantity) : 1
  if (!product) {
    sendError(res, ctx.state.quirks, 400, { detail: 'unknown product', source: 'data.id' })
    return
  }
  // An empty cart takes the currency its first item is added in.
  if (cart.items.length === 0) cart.currency = requestedCurrency(req) ?? cart.currency
  const existing = cart.items.find((i) => i.product.id === product.id)
  if (existing) existing.quantity += quantity
  else cart.items.push({ id: randomUUID(), product, quantity })
  cart.updatedAt = ctx.state.isoNow()
  sendJson(res, 201, {
    data: cart.items.map((i) => itemJson(i, cart.currency)),
    meta: cartJson(ctx, cart).meta,
  })
}

/** POST /v2/carts/{id}/checkout with an account token (checkout-account-management-authentication-token.mdx). */
function checkout(ctx: SimContext, req: Req, res: Res, [id = '']: string[]) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const cart = data(ctx).carts.get(id)
  if (!cart || (cart.accountId !== null && cart.accountId !== claims.scope)) return notFound(ctx, res, 'cart')
  if (cart.items.length === 0) {
    sendError(res, ctx.state.quirks, 400, { detail: 'the cart is empty' })
    return
  }
  const body = isRecord(req.body) && isRecord(req.body.data) ? req.body.data : {}
  const order: Order = {
    id: randomUUID(),
    accountId: claims.scope,
    memberId: claims.sub,
    items: cart.items.map((i) => ({ ...i })),
    contact: body.contact ?? null,
    createdAt: ctx.state.isoNow(),
  }
  data(ctx).orders.push(order)
  sendJson(res, 201, { data: orderJson(ctx, order) })
}

function listOrders(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const mine = data(ctx)
    .orders.filter((o) => o.accountId === claims.scope)
    .reverse()
    .map((o) => orderJson(ctx, o))
  list(ctx, req, res, '/v2/orders', mine)
}

function getOrder(ctx: SimContext, req: Req, res: Res, [id]: string[]) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const order = data(ctx).orders.find((o) => o.id === id && o.accountId === claims.scope)
  if (!order) return notFound(ctx, res, 'order')
  sendJson(res, 200, { data: orderJson(ctx, order) })
}

/** The account in the path, readable only with that account's token (the token's `scope`). */
function ownAccount(ctx: SimContext, req: Req, res: Res, id: string | undefined) {
  if (!requireBearer(ctx, req, res)) return undefined
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return undefined
  const account = id === claims.scope ? ctx.state.accounts.get(id) : undefined
  if (!account) notFound(ctx, res, 'account')
  return account
}

function accountJson(ctx: SimContext, a: { id: string; name: string; createdAt: string }) {
  return {
    id: a.id,
    type: 'account',
    name: a.name,
    legal_name: a.name,
    meta: { timestamps: { created_at: a.createdAt, updated_at: a.createdAt } },
    links: { self: `${ctx.apiUrl}/v2/accounts/${a.id}` },
  }
}

function listAccounts(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  const claims = accountToken(ctx, req, res, { required: true })
  if (!claims) return
  const a = ctx.state.accounts.get(claims.scope)
  list(ctx, req, res, '/v2/accounts', a ? [accountJson(ctx, a)] : [])
}

function getAccount(ctx: SimContext, req: Req, res: Res, [id]: string[]) {
  const account = ownAccount(ctx, req, res, id)
  if (account) sendJson(res, 200, { data: accountJson(ctx, account) })
}

function listAddresses(ctx: SimContext, req: Req, res: Res, [id]: string[]) {
  const account = ownAccount(ctx, req, res, id)
  if (!account) return
  const mine = data(ctx)
    .addresses.filter((a) => a.accountId === account.id)
    .map((a) => addressJson(ctx, a))
  list(ctx, req, res, `/v2/accounts/${account.id}/addresses`, mine)
}

function createAddress(ctx: SimContext, req: Req, res: Res, [id]: string[]) {
  const account = ownAccount(ctx, req, res, id)
  if (!account) return
  const body = isRecord(req.body) && isRecord(req.body.data) ? req.body.data : undefined
  if (!body) {
    sendError(res, ctx.state.quirks, 400, { detail: 'data is required', source: 'data' })
    return
  }
  const { id: _id, type: _type, ...fields } = body
  const address: Address = { id: randomUUID(), accountId: account.id, fields, createdAt: ctx.state.isoNow() }
  data(ctx).addresses.push(address)
  sendJson(res, 201, { data: addressJson(ctx, address) })
}

/** GET /catalog/products: the implicit token is enough; an account token, when sent, must be valid. */
function products(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  if (accountToken(ctx, req, res, { required: false }) === undefined) return
  const all = PRODUCTS.map((p) => ({
    id: p.id,
    type: 'product',
    attributes: { name: p.name, sku: p.sku },
    meta: { display_price: { without_tax: money(p.amount), with_tax: money(p.amount) } },
  }))
  list(ctx, req, res, req.path, all)
}

/** Proxy tests: an upstream that tries to set a cookie, and one that redirects off-site. */
function setCookieTest(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  sendJson(res, 200, { data: { ok: true } }, { 'set-cookie': 'epcc_sim_tracker=leak; Path=/; HttpOnly' })
}

function redirectTest(ctx: SimContext, req: Req, res: Res) {
  if (!requireBearer(ctx, req, res)) return
  redirect(res, 'https://evil.example/steal')
}

const ID = '([^/]+)'

export const shopperRoutes: Route[] = [
  route('GET', /^\/v2\/carts\/set-cookie-test$/, setCookieTest),
  route('GET', /^\/v2\/carts\/redirect-test$/, redirectTest),
  route('GET', /^\/v2\/carts$/, listCarts),
  route('POST', /^\/v2\/carts$/, createCart),
  route('GET', new RegExp(`^/v2/carts/${ID}$`), getCart),
  route('GET', new RegExp(`^/v2/carts/${ID}/items$`), cartItems),
  route('POST', new RegExp(`^/v2/carts/${ID}/items$`), addCartItem),
  route('POST', new RegExp(`^/v2/carts/${ID}/checkout$`), checkout),
  route('GET', /^\/v2\/orders$/, listOrders),
  route('GET', new RegExp(`^/v2/orders/${ID}$`), getOrder),
  route('GET', /^\/v2\/accounts$/, listAccounts),
  route('GET', new RegExp(`^/v2/accounts/${ID}$`), getAccount),
  route('GET', new RegExp(`^/v2/accounts/${ID}/addresses$`), listAddresses),
  route('POST', new RegExp(`^/v2/accounts/${ID}/addresses$`), createAddress),
  route('GET', /^\/(?:v2\/)?catalog\/products$/, products),
]
