// Per-key rate limits: a token bucket per API key (or per client account for signed work units),
// kept in Redis so every gateway instance draws from the same bucket. `takeToken` is the math;
// `TAKE_TOKEN_LUA` is the same math run atomically inside Redis (tests hold the two to the same
// answers). A bucket holds up to `capacity` calls and refills `refillPerSecond` calls a second.
//
// A Redis round trip per call is the largest part of the gateway's own latency, so an instance
// may lease a few tokens at once (`leaseSize`) and spend them locally: the shared bucket is still
// debited for every call, before the call, and leased tokens not spent within the lease are given
// back. Buckets too small to lease from (capacity under 20) are taken one call at a time.
import type { Redis } from "ioredis";

import { GatewayError } from "./errors.ts";

export interface BucketLimit {
  capacity: number;
  refillPerSecond: number;
}

export interface BucketState {
  tokens: number;
  updatedMs: number;
}

export interface TakeResult {
  allowed: boolean;
  state: BucketState;
  /** When refused: ms until one token is back. */
  retryAfterMs: number;
}

/** One call against a bucket at `nowMs` (a missing bucket is full). Pure. */
export function takeToken(state: BucketState | undefined, nowMs: number, limit: BucketLimit): TakeResult {
  const last = state ?? { tokens: limit.capacity, updatedMs: nowMs };
  const elapsed = Math.max(0, nowMs - last.updatedMs);
  const tokens = Math.min(limit.capacity, last.tokens + (elapsed * limit.refillPerSecond) / 1000);
  if (tokens >= 1) return { allowed: true, state: { tokens: tokens - 1, updatedMs: nowMs }, retryAfterMs: 0 };
  return {
    allowed: false,
    state: { tokens, updatedMs: nowMs },
    retryAfterMs: Math.ceil(((1 - tokens) * 1000) / limit.refillPerSecond),
  };
}

/**
 * `takeToken` inside Redis, taking up to `want` whole tokens at once (1 when ARGV[5] is absent).
 * KEYS[1] bucket hash; ARGV now ms, capacity, refill/s, ttl ms, want. Returns {granted, retryAfterMs}.
 */
export const TAKE_TOKEN_LUA = `
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local refill = tonumber(ARGV[3])
local want = tonumber(ARGV[5] or '1')
local fields = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(fields[1])
local updated = tonumber(fields[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
local elapsed = now - updated
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * refill / 1000)
local allowed = 0
local retry = 0
if tokens >= 1 then
  allowed = math.min(want, math.floor(tokens))
  tokens = tokens - allowed
else
  retry = math.ceil((1 - tokens) * 1000 / refill)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {allowed, retry}
`;

/** Gives unspent leased tokens back, never above capacity. KEYS[1] bucket hash; ARGV tokens, capacity. */
export const GIVE_BACK_LUA = `
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens == nil then return 0 end
tokens = math.min(tonumber(ARGV[2]), tokens + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens))
return 1
`;

/** Fewest tokens a lease is worth taking: below it, every call goes to Redis. */
export const MIN_LEASE = 2;
/** Most tokens one instance holds for one subject. */
export const MAX_LEASE = 64;

/**
 * Tokens an instance may lease at once for a bucket (pure): at most a tenth of the capacity and at
 * most what refills in `leaseMs`, capped at MAX_LEASE; 1 (no lease) when that is under MIN_LEASE.
 * So a bucket is never emptied early by more than a tenth of its capacity per instance.
 */
export function leaseSize(limit: BucketLimit, leaseMs: number): number {
  const size = Math.floor(Math.min(limit.capacity / 10, (limit.refillPerSecond * leaseMs) / 1000, MAX_LEASE));
  return size >= MIN_LEASE ? size : 1;
}

type LimiterScripts = {
  inframeshTakeToken(
    key: string,
    now: number,
    capacity: number,
    refill: number,
    ttl: number,
    want: number,
  ): Promise<[number, number]>;
  inframeshGiveBack(key: string, tokens: number, capacity: number): Promise<number>;
};

/** Tokens this instance holds for one subject, taken from the shared bucket already. */
interface Lease {
  tokens: number;
  limit: BucketLimit;
  expiresMs: number;
  topUp: Promise<void> | undefined;
}

const TAKEN = Promise.resolve();

function rateLimited(subject: string, limit: BucketLimit, retryAfterMs: number): GatewayError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new GatewayError(
    429,
    "rate_limited",
    `rate limit of ${limit.capacity} calls (refilling ${limit.refillPerSecond}/s) reached for ${subject}; retry in ${seconds} s`,
    { headers: { "retry-after": String(seconds) } },
  );
}

export interface RateLimiterOptions {
  /**
   * How long leased tokens may be held before the unspent ones go back to the bucket; 0 (the
   * default) takes every call from Redis.
   */
  leaseMs?: number;
}

/** Rate limiter over a shared Redis. */
export class RedisRateLimiter {
  readonly #redis: Redis & LimiterScripts;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #leases = new Map<string, Lease>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(redis: Redis, prefix: string, options: RateLimiterOptions = {}) {
    redis.defineCommand("inframeshTakeToken", { numberOfKeys: 1, lua: TAKE_TOKEN_LUA });
    redis.defineCommand("inframeshGiveBack", { numberOfKeys: 1, lua: GIVE_BACK_LUA });
    this.#redis = redis as Redis & LimiterScripts;
    this.#prefix = prefix;
    this.#leaseMs = options.leaseMs ?? 0;
  }

  #key(subject: string): string {
    return `${this.#prefix}rl:${subject}`;
  }

  /** Takes up to `want` tokens from the shared bucket; returns how many it got (0: refused). */
  async #takeShared(subject: string, limit: BucketLimit, want: number, nowMs: number): Promise<[number, number]> {
    // A full bucket refills in capacity/refill seconds; keep it a little longer, then let it go.
    const ttlMs = Math.ceil((limit.capacity / limit.refillPerSecond) * 1000) + 60_000;
    return this.#redis.inframeshTakeToken(
      this.#key(subject),
      nowMs,
      limit.capacity,
      limit.refillPerSecond,
      ttlMs,
      want,
    );
  }

  /**
   * Takes one call from `subject`'s bucket, or throws a 429 with Retry-After. With leases on, a
   * call covered by a live lease returns at once (no Redis round trip), and the lease is topped
   * up in the background when half spent.
   */
  take(subject: string, limit: BucketLimit, nowMs: number = Date.now()): Promise<void> {
    const size = this.#leaseMs > 0 ? leaseSize(limit, this.#leaseMs) : 1;
    if (size === 1) return this.#takeOne(subject, limit, nowMs);
    const lease = this.#leases.get(subject);
    if (lease !== undefined && lease.expiresMs > nowMs && lease.tokens >= 1) {
      lease.tokens -= 1;
      if (lease.tokens < size / 2 && lease.topUp === undefined) {
        lease.topUp = this.#takeShared(subject, limit, size - lease.tokens, nowMs)
          .then(([granted]) => {
            lease.tokens += granted;
            lease.expiresMs = Date.now() + this.#leaseMs;
          })
          // A failed top-up only means the next call past the lease asks Redis itself.
          .catch(() => undefined)
          .finally(() => (lease.topUp = undefined));
      }
      return TAKEN;
    }
    return this.#newLease(subject, limit, size, nowMs);
  }

  async #takeOne(subject: string, limit: BucketLimit, nowMs: number): Promise<void> {
    const [granted, retryAfterMs] = await this.#takeShared(subject, limit, 1, nowMs);
    if (granted < 1) throw rateLimited(subject, limit, retryAfterMs);
  }

  async #newLease(subject: string, limit: BucketLimit, size: number, nowMs: number): Promise<void> {
    const [granted, retryAfterMs] = await this.#takeShared(subject, limit, size, nowMs);
    if (granted < 1) throw rateLimited(subject, limit, retryAfterMs);
    const current = this.#leases.get(subject);
    if (current !== undefined && current.tokens >= 1) {
      // Another call leased meanwhile (or an expired lease is still held): pool them.
      current.tokens += granted - 1;
      current.expiresMs = Date.now() + this.#leaseMs;
    } else {
      this.#leases.set(subject, {
        tokens: granted - 1,
        limit,
        expiresMs: Date.now() + this.#leaseMs,
        topUp: undefined,
      });
    }
    this.#sweepSoon();
  }

  #sweepSoon(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setTimeout(() => {
      this.#sweeper = undefined;
      void this.returnExpired(Date.now());
      if (this.#leases.size > 0) this.#sweepSoon();
    }, this.#leaseMs);
    this.#sweeper.unref();
  }

  /** Gives the unspent tokens of every lease expired at `nowMs` back to their buckets. */
  async returnExpired(nowMs: number): Promise<void> {
    const returns: Promise<unknown>[] = [];
    for (const [subject, lease] of this.#leases) {
      if (lease.expiresMs > nowMs || lease.topUp !== undefined) continue;
      this.#leases.delete(subject);
      const unspent = Math.floor(lease.tokens);
      if (unspent > 0) {
        returns.push(
          this.#redis.inframeshGiveBack(this.#key(subject), unspent, lease.limit.capacity).catch(() => undefined),
        );
      }
    }
    await Promise.all(returns);
  }

  /** Gives every lease back now (a stopping instance leaves its unspent tokens to the others). */
  async close(): Promise<void> {
    if (this.#sweeper !== undefined) clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
    await Promise.all([...this.#leases.values()].map((lease) => lease.topUp));
    await this.returnExpired(Number.POSITIVE_INFINITY);
  }
}
