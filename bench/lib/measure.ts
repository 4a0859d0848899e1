/**
 * Tiny time-boxed throughput measurement. Machines here are noisy, so each contender runs in
 * several interleaved rounds and we report the median, and compare contenders measured in the
 * same run as ratios rather than absolute numbers.
 */

export interface Contender {
  readonly name: string;
  /** One operation. Sync or async. */
  readonly op: () => unknown;
}

export interface Result {
  readonly name: string;
  readonly opsPerSecond: number;
  readonly rounds: readonly number[];
}

async function runFor(op: () => unknown, milliseconds: number): Promise<number> {
  const deadline = process.hrtime.bigint() + BigInt(milliseconds) * 1_000_000n;
  const start = process.hrtime.bigint();
  let count = 0;
  // Check the clock every 64 ops: hrtime itself costs ~50 ns.
  for (;;) {
    for (let i = 0; i < 64; i++) {
      const result = op();
      if (result instanceof Promise) await result;
    }
    count += 64;
    const now = process.hrtime.bigint();
    if (now >= deadline) return (count * 1e9) / Number(now - start);
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Warm every contender up, then run `rounds` interleaved rounds of `milliseconds` each. */
export async function compare(contenders: readonly Contender[], options: { rounds: number; milliseconds: number }): Promise<Result[]> {
  for (const c of contenders) await runFor(c.op, Math.min(500, options.milliseconds));
  const rounds = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    // Alternate the order so that neither contender always runs right after the other.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) rounds.get(c.name)!.push(await runFor(c.op, options.milliseconds));
  }
  return contenders.map((c) => ({ name: c.name, opsPerSecond: median(rounds.get(c.name)!), rounds: rounds.get(c.name)! }));
}

/**
 * Median over rounds of a/b measured in the SAME round. On a machine whose speed drifts (shared
 * hosts), per-round ratios cancel the drift that a ratio of medians would keep.
 */
export function pairedRatio(a: Result, b: Result): number {
  return median(a.rounds.map((value, i) => value / b.rounds[i]!));
}

export function formatRate(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

export function machineLine(): string {
  return `node ${process.version}, ${process.platform}/${process.arch}`;
}
