/**
 * Token-bucket rate limiting, in memory, per key (a client id, an API token id, a peer address).
 *
 * A bucket holds up to `burst` tokens and refills continuously at `ratePerSecond`; a request takes
 * `cost` tokens or is refused with the whole seconds until it could succeed (HTTP Retry-After).
 *
 * Two properties matter for abuse resistance:
 *  - Memory is bounded: buckets live in an LruMap of at most `maxKeys`, so an attacker minting
 *    keys (spoofed client ids, a /64 of IPv6 addresses) costs us a fixed amount of memory. The
 *    price is that an evicted key comes back with a full bucket — never more than a full bucket,
 *    which is what an idle key would have anyway, but an active key can be reset if `maxKeys`
 *    distinct keys are seen between two of its requests. Size `maxKeys` well above the number of
 *    keys active at once; the CLOCK policy already gives recently used keys a second chance.
 *  - Time only refills forward: if the clock steps back, elapsed time counts as zero and the
 *    bucket remembers the latest time seen, so stepping back and forward again cannot replay the
 *    same interval to mint tokens twice.
 *
 * Levels are kept in milli-tokens (tokens × 1000) so that with integer rates and millisecond clocks
 * refill is exact integer arithmetic: 100 ms at 10/s is exactly one token, never 0.999….
 */
import type { Clock } from '../clock.js';
import { LruMap } from '../lru-map.js';

export interface RateLimiterOptions {
  readonly clock: Clock;
  /** Most buckets kept at once; the approximately least recently used one is dropped beyond it. */
  readonly maxKeys: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** 0 when allowed; otherwise whole seconds (>= 1) until `cost` tokens will be available. */
  readonly retryAfterSeconds: number;
}

export interface RateLimiter {
  /**
   * Takes `cost` tokens from `key`'s bucket if it holds them. A refusal takes nothing. `cost` may
   * not exceed `burst` (such a request could never succeed; the caller must reject it as a bad
   * request instead), and all numbers must be positive and finite: both throw a RangeError.
   */
  take(key: string, ratePerSecond: number, burst: number, cost?: number): RateDecision;
  /**
   * What take would answer now, without taking tokens, creating a bucket or marking the key used:
   * for a caller that must refuse early (e.g. before checking a credential) with an exact
   * Retry-After. Same argument checks as take.
   */
  check(key: string, ratePerSecond: number, burst: number, cost?: number): RateDecision;
  /** Tokens available to `key` now (fractional), without taking any or marking the key used. */
  peek(key: string, ratePerSecond: number, burst: number): number;
  /** Number of buckets held. */
  readonly size: number;
}

interface Bucket {
  /** Milli-tokens as of `at`. */
  level: number;
  /** Latest clock reading seen, ms. */
  at: number;
}

const MILLI = 1000;

/** A rate limiter whose buckets all share one bounded map and one clock. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { clock, maxKeys } = options;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be a positive integer');
  const buckets = new LruMap<string, Bucket>(maxKeys);

  /** The level at `now` after refill (no refill if the clock is behind `bucket.at`); pure. */
  const refill = (bucket: Bucket, now: number, rate: number, burst: number): number => {
    const elapsed = Math.max(0, now - bucket.at);
    // elapsed (ms) × rate (tokens/s) = milli-tokens; the cap also absorbs a lowered burst.
    return Math.min(burst * MILLI, bucket.level + elapsed * rate);
  };

  return {
    take(key: string, ratePerSecond: number, burst: number, cost = 1): RateDecision {
      checkParameters(ratePerSecond, burst, cost);
      const now = clock.now();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        // A new (or evicted) key starts full: exactly what a key idle for burst/rate seconds has.
        bucket = { level: burst * MILLI, at: now };
        buckets.set(key, bucket);
      }
      const level = refill(bucket, now, ratePerSecond, burst);
      bucket.at = Math.max(bucket.at, now);
      const needed = cost * MILLI;
      if (level >= needed) {
        bucket.level = level - needed;
        return { allowed: true, retryAfterSeconds: 0 };
      }
      bucket.level = level;
      return denied(needed - level, ratePerSecond);
    },

    check(key: string, ratePerSecond: number, burst: number, cost = 1): RateDecision {
      checkParameters(ratePerSecond, burst, cost);
      const bucket = buckets.peek(key);
      const level = bucket === undefined ? burst * MILLI : refill(bucket, clock.now(), ratePerSecond, burst);
      const needed = cost * MILLI;
      return level >= needed ? { allowed: true, retryAfterSeconds: 0 } : denied(needed - level, ratePerSecond);
    },

    peek(key: string, ratePerSecond: number, burst: number): number {
      checkParameters(ratePerSecond, burst, burst);
      const bucket = buckets.peek(key);
      if (bucket === undefined) return burst;
      return refill(bucket, clock.now(), ratePerSecond, burst) / MILLI;
    },

    get size(): number {
      return buckets.size;
    },
  };
}

/** A refusal; `deficit` milli-tokens ÷ (rate × 1000 milli-tokens per second) = seconds to wait. */
function denied(deficit: number, ratePerSecond: number): RateDecision {
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(deficit / (ratePerSecond * MILLI))) };
}

function checkParameters(ratePerSecond: number, burst: number, cost: number): void {
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new RangeError('ratePerSecond must be positive and finite');
  if (!(burst > 0) || !Number.isFinite(burst)) throw new RangeError('burst must be positive and finite');
  if (!(cost > 0) || !Number.isFinite(cost)) throw new RangeError('cost must be positive and finite');
  if (cost > burst) throw new RangeError('cost exceeds burst: the request could never be allowed');
}
