// The pricing dispatcher's shell: HTTP requests to the price API under a hard cap of open
// requests, a token bucket, a per-request timeout, and a timer that enforces deadlines even
// when no response ever comes. The policy itself is PriceCoalescer's.
import type { Car } from "../domain.ts";
import { amountToCents } from "../domain.ts";
import { PriceCoalescer, type PriceRequest } from "./coalesce.ts";
import { TokenBucket } from "./token-bucket.ts";

/** How long a timed-out request keeps its slot after the abort (see send()). */
const ABORT_GRACE_MS = 200;

export interface DispatcherOptions {
  baseUrl: string;
  maxInFlight: number;
  ratePerSecond: number;
  burst: number;
  requestTimeoutMs: number;
  deadlineMs: number;
  cacheTtlMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  maxWaitingCars: number;
  random?: () => number;
  now?: () => number;
  /** Called with each request's latency in ms and whether it succeeded. */
  onRequest?: (ms: number, ok: boolean) => void;
}

export class PricingDispatcher {
  private readonly policy: PriceCoalescer;
  private readonly bucket: TokenBucket;
  private readonly now: () => number;
  private open = 0;
  private readonly controllers = new Set<AbortController>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** Time spent with maxInFlight requests open while cars waited, for the bench. */
  saturatedMs = 0;
  waitingMs = 0;
  private lastSample: number;

  constructor(private readonly options: DispatcherOptions) {
    this.now = options.now ?? Date.now;
    this.policy = new PriceCoalescer({
      deadlineMs: options.deadlineMs,
      maxWaitingCars: options.maxWaitingCars,
      cacheTtlMs: options.cacheTtlMs,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
      random: options.random ?? Math.random,
    });
    this.bucket = new TokenBucket(options.ratePerSecond, options.burst);
    this.lastSample = this.now();
  }

  get inFlight(): number {
    return this.open;
  }

  get waiting(): number {
    return this.policy.waiting;
  }

  isFull(): boolean {
    return this.policy.isFull();
  }

  add(car: Car, waitingSince: number): void {
    this.policy.add(car, waitingSince, this.now());
    this.pump();
  }

  removeWhere(pred: (car: Car) => boolean): void {
    this.policy.removeWhere(pred);
  }

  /** Cars finished (COMPLETED or FAILED_GET_PRICE) since the last call. */
  drainFinished(): Car[] {
    this.policy.expire(this.now());
    return this.policy.drainFinished();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.controllers) c.abort();
    while (this.open > 0) await Bun.sleep(5);
  }

  private sample(now: number): void {
    const dt = now - this.lastSample;
    this.lastSample = now;
    if (this.policy.waiting > 0) {
      this.waitingMs += dt;
      if (this.open >= this.options.maxInFlight) this.saturatedMs += dt;
    }
  }

  /** Sends what the cap, the bucket and the policy allow; re-arms the timer for the rest. */
  private pump(): void {
    if (this.stopped) return;
    const now = this.now();
    this.sample(now);
    this.policy.expire(now);
    while (this.open < this.options.maxInFlight) {
      if (this.bucket.nextAvailableAt(now) > now) break;
      const req = this.policy.nextRequest(now);
      if (!req) break;
      this.bucket.tryTake(now);
      this.send(req);
    }
    this.arm(now);
  }

  private arm(now: number): void {
    if (this.timer) clearTimeout(this.timer);
    const candidates = [this.policy.nextDeadline(), this.policy.nextRetryAt(), this.policy.waiting > 0 ? this.bucket.nextAvailableAt(now) : undefined].filter(
      (t): t is number => t !== undefined,
    );
    if (candidates.length === 0) return;
    const at = Math.max(now + 1, Math.min(...candidates));
    this.timer = setTimeout(() => this.pump(), Math.min(at - now, 1000));
  }

  private send(req: PriceRequest): void {
    this.open++;
    const controller = new AbortController();
    this.controllers.add(controller);
    const started = performance.now();
    const timeout = setTimeout(() => controller.abort(new Error(`timeout after ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
    const done = async (result: { cents: number } | { error: string }) => {
      clearTimeout(timeout);
      this.controllers.delete(controller);
      // The slot is freed only once the request has settled, so the cap is never exceeded.
      // An aborted request ends at the server only when it sees the connection close: hold
      // the slot a moment longer so the server's count has dropped before the next request.
      if (controller.signal.aborted && !this.stopped) await Bun.sleep(ABORT_GRACE_MS);
      const now = this.now();
      this.sample(now);
      this.open--;
      const ok = "cents" in result;
      this.options.onRequest?.(performance.now() - started, ok);
      if (ok) this.policy.succeeded(req, result.cents, now);
      else this.policy.failed(req, result.error, now);
      this.pump();
    };
    fetch(`${this.options.baseUrl}/price/${encodeURIComponent(req.sku)}`, { signal: controller.signal })
      .then(async (res) => {
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => {});
          return { error: `HTTP ${res.status}` };
        }
        const body = (await res.json().catch(() => undefined)) as { price?: unknown } | undefined;
        const cents = typeof body?.price === "number" ? amountToCents(body.price) : null;
        return cents === null ? { error: "bad JSON: no price in whole cents" } : { cents };
      })
      .catch((e: unknown) => {
        const reason = controller.signal.aborted ? String((controller.signal.reason as Error)?.message ?? "aborted") : `connection error: ${(e as Error).message}`;
        return { error: reason };
      })
      .then(done);
  }
}
