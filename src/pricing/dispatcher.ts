// The pricing dispatcher's shell: HTTP requests to the price API under a hard cap of open
// requests, a token bucket, a per-request timeout, and a timer that enforces deadlines even
// when no response ever comes. The policy itself is PriceCoalescer's.
import { engineSpec } from "../config.ts";
import type { Car } from "../domain.ts";
import { judgeAnswer } from "./answer.ts";
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
  /** PRICE_MAX_AMOUNT: a larger price is a failed answer (default the setting's default). */
  maxAmount?: number;
  random?: () => number;
  now?: () => number;
  /** Called with each request's latency in ms and, when it failed, why. */
  onRequest?: (ms: number, error?: string) => void;
}

export class PricingDispatcher {
  private readonly policy: PriceCoalescer;
  private readonly bucket: TokenBucket;
  private readonly now: () => number;
  private open = 0;
  private readonly controllers = new Set<AbortController>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  private timerAt: number | undefined;
  private stopped = false;
  private saturatedBefore = 0;
  private waitingBefore = 0;
  /** Since when the current state (cars waiting or not, requests open) has held. */
  private lastSample: number;
  private readonly maxAmount: number;

  constructor(private readonly options: DispatcherOptions) {
    this.now = options.now ?? Date.now;
    this.maxAmount = options.maxAmount ?? engineSpec.priceMaxAmount.default;
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

  /** Time spent with maxInFlight requests open while cars waited, for the bench; up to now. */
  get saturatedMs(): number {
    return this.saturatedBefore + (this.saturated() ? Math.max(0, this.now() - this.lastSample) : 0);
  }

  /** Time spent with cars waiting, up to now. */
  get waitingMs(): number {
    return this.waitingBefore + (this.policy.waiting > 0 ? Math.max(0, this.now() - this.lastSample) : 0);
  }

  isFull(): boolean {
    return this.policy.isFull();
  }

  add(car: Car, waitingSince: number): void {
    const now = this.now();
    this.sample(now);
    this.policy.add(car, waitingSince, now);
    this.pump();
  }

  removeWhere(pred: (car: Car) => boolean): void {
    this.sample(this.now());
    this.policy.removeWhere(pred);
  }

  /** Cars finished (COMPLETED or FAILED_GET_PRICE) since the last call. */
  drainFinished(): Car[] {
    const now = this.now();
    this.sample(now);
    this.policy.expire(now);
    return this.policy.drainFinished();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.controllers) c.abort();
    while (this.open > 0) await Bun.sleep(5);
  }

  private saturated(): boolean {
    return this.policy.waiting > 0 && this.open >= this.options.maxInFlight;
  }

  /**
   * Closes the interval since the last sample with the state that held during it. Called
   * before anything that changes the waiting cars or the open requests: sampling after the
   * change judged the interval by its end, so the time before the first car (the engine
   * starting, the consumer joining) counted as cars waiting with nothing open.
   */
  private sample(now: number): void {
    const dt = Math.max(0, now - this.lastSample);
    this.lastSample = Math.max(this.lastSample, now);
    if (this.policy.waiting > 0) {
      this.waitingBefore += dt;
      if (this.open >= this.options.maxInFlight) this.saturatedBefore += dt;
    }
  }

  /** Sends what the cap, the bucket and the policy allow; re-arms the timer for the rest. */
  private pump(): void {
    if (this.stopped) return;
    const now = this.now();
    this.sample(now);
    this.policy.expire(now);
    this.arm(now, earliest(this.fill(now), this.policy.nextDeadline()));
  }

  /** Sends while a slot, a token and a due SKU are there; returns when to try again, if ever. */
  private fill(now: number): number | undefined {
    for (;;) {
      // All slots taken: the next response pumps again, no timer needed for sending.
      if (this.open >= this.options.maxInFlight) return undefined;
      const token = this.bucket.nextAvailableAt(now);
      if (token > now) return this.policy.waiting > 0 ? token : undefined;
      const req = this.policy.nextRequest(now);
      // Nothing due now: every SKU cars wait for is in flight or backing off.
      if (!req) return this.policy.nextRetryAt();
      this.bucket.tryTake(now);
      this.send(req);
    }
  }

  /**
   * Wakes the pump when something can happen without a response: a deadline, a backoff
   * ending, a token while a slot is free. Arming for "a token is there now" whatever the
   * state fired every millisecond while all slots were taken, each time scanning the
   * waiting cars.
   */
  private arm(now: number, at: number | undefined): void {
    if (at === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = this.timerAt = undefined;
      return;
    }
    const fireAt = Math.min(Math.max(now + 1, at), now + 1000);
    // A timer due no later is kept: when it fires early, the pump re-arms for the rest.
    if (this.timer && this.timerAt !== undefined && this.timerAt <= fireAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = fireAt;
    this.timer = setTimeout(() => {
      this.timer = this.timerAt = undefined;
      this.pump();
    }, fireAt - now);
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
      // Refill the slot before pricing the response's cars (hundreds with a shared SKU), so
      // that work does not keep it empty. The answered SKU still counts as in flight here, so
      // its next request waits for the pump below, after the cars it priced are gone.
      if (!this.stopped) this.fill(now);
      const ok = "cents" in result;
      this.options.onRequest?.(performance.now() - started, ok ? undefined : result.error);
      if (ok) this.policy.succeeded(req, result.cents, now);
      else this.policy.failed(req, result.error, now);
      this.pump();
    };
    fetch(`${this.options.baseUrl}/price/${encodeURIComponent(req.sku)}`, { signal: controller.signal })
      .then(async (res) => {
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => {});
          return judgeAnswer(req.sku, res.status, "", this.maxAmount);
        }
        // A body cut or trickling past the timeout rejects here: a connection error or the abort.
        const verdict = judgeAnswer(req.sku, res.status, await res.text(), this.maxAmount);
        // A bad body is this SKU's problem (the service answers others well): the car's error,
        // which lists reasons for all its SKUs together, says which SKU got which answer.
        return "error" in verdict ? { error: `${req.sku}: ${verdict.error}` } : verdict;
      })
      .catch((e: unknown) => {
        const reason = controller.signal.aborted
          ? String((controller.signal.reason as Error)?.message ?? "aborted")
          : `connection error: ${(e as Error).message}`;
        return { error: reason };
      })
      .then(done);
  }
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
