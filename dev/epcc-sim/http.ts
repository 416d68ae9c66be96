/** Request parsing and response helpers shared by the simulator's two listeners. */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

export interface SimRequest {
  at: number
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string>
  body: unknown
  status: number
}

export interface Quirks {
  statusAsString: boolean
  nextAsStringNull: boolean
  omitMemberId: boolean
  rejectImplicitOnSettings: boolean
  errorsAsObject: boolean
  /** Answer with EPCC's own permissive CORS headers (`Access-Control-Allow-Origin: *`), as EPCC's API does. */
  accessControlHeaders: boolean
}

/**
 * One parsed incoming request. `bodyInvalid` is set when a JSON body did not parse; `aborted` when the client
 * gave up before the body was complete (the request still reached us, so it is still logged).
 */
export interface Req {
  method: string
  path: string
  url: URL
  query: Record<string, string>
  headers: Record<string, string>
  body: unknown
  bodyInvalid: boolean
  aborted: boolean
  raw: IncomingMessage
}

export type Res = ServerResponse

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)

export async function parseRequest(raw: IncomingMessage, base: string): Promise<Req> {
  const url = new URL(raw.url ?? '/', base)
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v
  }
  const query: Record<string, string> = {}
  for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v

  const chunks: Buffer[] = []
  let aborted = false
  try {
    for await (const chunk of raw) chunks.push(chunk as Buffer)
  } catch {
    aborted = true
  }
  const text = Buffer.concat(chunks).toString('utf8')
  const type = headers['content-type'] ?? ''
  let body: unknown
  let bodyInvalid = false
  if (text.length > 0) {
    if (type.includes('application/x-www-form-urlencoded')) {
      body = Object.fromEntries(new URLSearchParams(text))
    } else {
      try {
        body = JSON.parse(text)
      } catch {
        body = text
        bodyInvalid = true
      }
    }
  }
  return {
    method: raw.method ?? 'GET',
    path: url.pathname,
    url,
    query,
    headers,
    body,
    bodyInvalid,
    aborted,
    raw,
  }
}

export function sendJson(
  res: Res,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  })
  res.end(text)
}

export function sendHtml(res: Res, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(html)),
  })
  res.end(html)
}

export function redirect(res: Res, location: string, status = 302): void {
  res.writeHead(status, { location, 'content-length': '0', 'cache-control': 'no-store' })
  res.end()
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

export const titleFor = (status: number) => TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Error')

export interface ErrorItem {
  title?: string
  detail?: string
  source?: string
  request_id?: string
}

/** EPCC's error shape (errors.md), bent by the representation quirks (epcc-api.md §1.0, §4.5). */
export function errorBody(quirks: Quirks, status: number, item: ErrorItem = {}): Record<string, unknown> {
  const e: Record<string, unknown> = {
    status: quirks.statusAsString ? String(status) : status,
    title: item.title ?? titleFor(status),
  }
  if (item.detail) e.detail = item.detail
  if (item.source) e.source = item.source
  if (status >= 500) e.request_id = item.request_id ?? randomUUID()
  return { errors: quirks.errorsAsObject ? e : [e] }
}

export function sendError(
  res: Res,
  quirks: Quirks,
  status: number,
  item: ErrorItem = {},
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, errorBody(quirks, status, item), headers)
}

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
