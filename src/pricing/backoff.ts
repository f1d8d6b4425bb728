// Exponential backoff with full jitter (AWS architecture blog's "full jitter"): a random delay
// in [0, min(max, base·2^attempt)], so retries of many cars spread out instead of marching.
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * (ceiling + 1));
}
