// Per-key rate limits: a token bucket per API key (or per client account for signed work units),
// kept in Redis so every gateway instance draws from the same bucket. `takeToken` is the math;
// `TAKE_TOKEN_LUA` is the same math run atomically inside Redis (tests hold the two to the same
// answers). A bucket holds up to `capacity` calls and refills `refillPerSecond` calls a second.
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

/** `takeToken` inside Redis. KEYS[1] bucket hash; ARGV now ms, capacity, refill/s, ttl ms. Returns {allowed, retryAfterMs}. */
export const TAKE_TOKEN_LUA = `
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local refill = tonumber(ARGV[3])
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
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 1000 / refill)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {allowed, retry}
`;

/** Rate limiter over a shared Redis. */
export class RedisRateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
    redis.defineCommand("inframeshTakeToken", { numberOfKeys: 1, lua: TAKE_TOKEN_LUA });
  }

  /** Takes one call from `subject`'s bucket, or throws a 429 with Retry-After. */
  async take(subject: string, limit: BucketLimit, nowMs: number = Date.now()): Promise<void> {
    // A full bucket refills in capacity/refill seconds; keep it a little longer, then let it go.
    const ttlMs = Math.ceil((limit.capacity / limit.refillPerSecond) * 1000) + 60_000;
    const run = (this.#redis as unknown as Record<string, (...args: unknown[]) => Promise<[number, number]>>)
      .inframeshTakeToken!;
    const [allowed, retryAfterMs] = await run.call(
      this.#redis,
      `${this.#prefix}rl:${subject}`,
      nowMs,
      limit.capacity,
      limit.refillPerSecond,
      ttlMs,
    );
    if (allowed !== 1) {
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      throw new GatewayError(
        429,
        "rate_limited",
        `rate limit of ${limit.capacity} calls (refilling ${limit.refillPerSecond}/s) reached for ${subject}; retry in ${seconds} s`,
        { headers: { "retry-after": String(seconds) } },
      );
    }
  }
}
