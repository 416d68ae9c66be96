import type { onRequestHookHandler, onResponseHookHandler, RouteOptions } from 'fastify'

/**
 * Adds a hook to one route as it is declared (from an `onRoute` hook), after the route's own: a hook only the
 * routes that need it run, decided once at start instead of by reading the route's config on every request.
 */
export function addRouteHook(route: RouteOptions, name: 'onRequest', hook: onRequestHookHandler): void
export function addRouteHook(route: RouteOptions, name: 'onResponse', hook: onResponseHookHandler): void
export function addRouteHook(
  route: RouteOptions,
  name: 'onRequest' | 'onResponse',
  hook: onRequestHookHandler | onResponseHookHandler,
): void {
  const existing = route[name]
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]
  ;(route as unknown as Record<string, unknown>)[name] = [...list, hook]
}
