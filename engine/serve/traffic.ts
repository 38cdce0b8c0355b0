/**
 * The traffic split between a model's production and canary versions (SPEC section 7): without a
 * canary everything goes to production; with one, the canary takes its `traffic_share` of requests.
 * A request with `X-Cairn-Route-Key` is placed by a stable hash of the key, so the same key keeps
 * going to the same version while the share stays, and as a rollout's share grows the keys already
 * on the canary stay there (a key goes to the canary when its hash point is below the share).
 */

export interface Split {
  production: number | undefined
  canary: number | undefined
  /** The canary's share of requests, 0..1. */
  canaryShare: number
}

/** A point in [0, 1) for a route key: 32-bit FNV-1a of its UTF-16 code units, mixed (murmur3's finalizer). */
export function routePoint(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) / 4294967296
}

/** The version that serves a request (undefined: the model has neither production nor canary). */
export function chooseVersion(split: Split, routeKey: string | undefined, random: () => number = Math.random): number | undefined {
  if (split.canary === undefined) return split.production
  if (split.production === undefined) return split.canary
  if (split.canaryShare <= 0) return split.production
  if (split.canaryShare >= 1) return split.canary
  const point = routeKey === undefined ? random() : routePoint(routeKey)
  return point < split.canaryShare ? split.canary : split.production
}
