// The pricing policy (SPEC §5), pure: which SKU to request next, which cars a response
// prices, when a car has waited too long. No I/O; time is an argument.
//
// - Cars waiting for the same SKU share one request, but a response prices only the cars that
//   began waiting at or before the request was sent: prices are never older than the wait.
//   A car that begins waiting while its SKU's request is in flight waits for the next one.
// - At most one request per SKU is in flight. SKUs are requested in the order their oldest
//   waiting car began waiting (FIFO), so no car starves behind newer ones.
// - A failed request is retried after a backoff with jitter; the car's deadline bounds it all.
// - Totals are summed in integer cents over the seven parts.
import type { Car, Part } from "../domain.ts";
import { centsToAmount } from "../domain.ts";
import { MinHeap } from "../heap.ts";
import { backoffMs } from "./backoff.ts";

export interface CoalesceOptions {
  deadlineMs: number;
  maxWaitingCars: number;
  cacheTtlMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  random: () => number;
}

interface WaitingCar {
  key: string;
  car: Car;
  since: number;
  deadline: number;
  /** Its distinct SKUs, in part order. */
  skus: string[];
  /** Per distinct SKU, its price once known (NaN before). */
  cents: number[];
  /** Distinct SKUs without a price yet. */
  unpriced: number;
  /** Per part, in part order, the index of its SKU in `skus` (a SKU twice counts twice in the total). */
  partSku: number[];
  /** Each distinct failure reason and how often it happened: the car's error names them all. */
  failures?: Map<string, number>;
}

interface SkuState {
  /** The cars waiting for this SKU, each with the SKU's index in its `skus` (forget() takes a car out of every SKU's map). */
  waiters: Map<WaitingCar, number>;
  inFlightSentAt?: number;
  attempts: number;
  notBefore: number;
  queued: boolean;
}

export interface PriceRequest {
  sku: string;
  sentAt: number;
}

export function carKey(car: Car): string {
  return `${car.carId}/${car.firstPartAt}`;
}

export function partsOfCar(car: Car): Part[] {
  return [car.body, car.engine, car.remoteControl, ...car.wheels].filter((p): p is NonNullable<typeof p> => p !== undefined);
}

export class PriceCoalescer {
  private readonly cars = new Map<string, WaitingCar>();
  /**
   * Waiting cars by deadline, a binary min-heap. The shell asks for the next deadline and
   * expires cars on every add and every response; scanning up to PRICE_MAX_WAITING_CARS cars
   * each time made adding a batch of cars quadratic and stalled the event loop. Cars that
   * finish stay in the heap until they surface (checked against `cars`), and it is rebuilt
   * once such leftovers outnumber the waiting cars, so it stays O(waiting).
   */
  private deadlines = newDeadlineHeap();
  private readonly skus = new Map<string, SkuState>();
  /** SKUs that need a request, oldest waiter first. */
  private readonly queue: string[] = [];
  private readonly cache = new Map<string, { cents: number; at: number }>();
  private finished: Car[] = [];

  constructor(private readonly options: CoalesceOptions) {}

  get waiting(): number {
    return this.cars.size;
  }

  isFull(): boolean {
    return this.cars.size >= this.options.maxWaitingCars;
  }

  /** A car starts (or, restored after a crash, resumes) waiting; its deadline counts from `since`. */
  add(car: Car, since: number, now: number): void {
    const key = carKey(car);
    if (this.cars.has(key)) return;
    const skus: string[] = [];
    const partSku = partsOfCar(car).map((p) => {
      const i = skus.indexOf(p.sku);
      return i >= 0 ? i : skus.push(p.sku) - 1;
    });
    const cents = skus.map(() => Number.NaN);
    const w: WaitingCar = { key, car, since, deadline: since + this.options.deadlineMs, skus, cents, unpriced: skus.length, partSku };
    this.cars.set(key, w);
    this.deadlines.push(w);
    skus.forEach((sku, i) => {
      const cached = this.cache.get(sku);
      if (cached && this.options.cacheTtlMs > 0 && now - cached.at < this.options.cacheTtlMs) {
        w.cents[i] = cached.cents;
        w.unpriced--;
        return;
      }
      const s = this.sku(sku);
      s.waiters.set(w, i);
      this.enqueue(sku, s);
    });
    this.finishIfPriced(w, now);
  }

  /** Drops waiting cars (their partition moved to another owner). */
  removeWhere(pred: (car: Car) => boolean): void {
    for (const w of [...this.cars.values()]) if (pred(w.car)) this.forget(w);
  }

  /** The next SKU to request at `now`, marked in flight; undefined when none is due. */
  nextRequest(now: number): PriceRequest | undefined {
    for (let i = 0; i < this.queue.length; i++) {
      const sku = this.queue[i]!;
      const s = this.skus.get(sku);
      if (!s || s.waiters.size === 0) {
        this.queue.splice(i--, 1);
        if (s) s.queued = false;
        continue;
      }
      if (s.inFlightSentAt !== undefined || s.notBefore > now) continue;
      this.queue.splice(i, 1);
      s.queued = false;
      s.inFlightSentAt = now;
      return { sku, sentAt: now };
    }
    return undefined;
  }

  /** When a queued SKU's backoff ends, for the shell's timer. */
  nextRetryAt(): number | undefined {
    let at: number | undefined;
    for (const sku of this.queue) {
      const s = this.skus.get(sku);
      if (s && s.inFlightSentAt === undefined && s.waiters.size > 0) at = Math.min(at ?? s.notBefore, s.notBefore);
    }
    return at;
  }

  succeeded(req: PriceRequest, cents: number, now: number): void {
    const s = this.skus.get(req.sku);
    this.cache.set(req.sku, { cents, at: now });
    if (!s) return;
    s.inFlightSentAt = undefined;
    s.attempts = 0;
    s.notBefore = now;
    // Deleting the entry being visited (here and in forget) is safe while iterating a Map.
    for (const [w, i] of s.waiters) {
      if (w.since > req.sentAt) continue; // began waiting after the request left: needs a fresher one
      w.cents[i] = cents;
      w.unpriced--;
      s.waiters.delete(w);
      this.finishIfPriced(w, now);
    }
    this.enqueue(req.sku, s);
  }

  failed(req: PriceRequest, reason: string, now: number): void {
    const s = this.skus.get(req.sku);
    if (!s) return;
    s.inFlightSentAt = undefined;
    s.notBefore = now + backoffMs(s.attempts, this.options.retryBaseMs, this.options.retryMaxMs, this.options.random);
    s.attempts++;
    for (const w of s.waiters.keys()) (w.failures ??= new Map()).set(reason, (w.failures.get(reason) ?? 0) + 1);
    this.enqueue(req.sku, s);
  }

  /** Cars past their deadline end FAILED_GET_PRICE. */
  expire(now: number): void {
    for (let w = this.earliest(); w !== undefined && w.deadline <= now; w = this.earliest()) {
      const missing = w.skus.filter((_, i) => Number.isNaN(w.cents[i]));
      const why = w.failures ? [...w.failures].map(([r, n]) => (n > 1 ? `${r} (${n}×)` : r)).join(", ") : "no request for these SKUs finished yet";
      this.finished.push({
        ...w.car,
        situation: "FAILED_GET_PRICE",
        error: `no price for ${missing.join(", ")} within PRICE_DEADLINE_MS=${this.options.deadlineMs}: ${why}`,
        pricedAt: now,
      });
      this.forget(w);
    }
  }

  /** Cars that are done (COMPLETED or FAILED_GET_PRICE) since the last call. */
  drainFinished(): Car[] {
    const out = this.finished;
    this.finished = [];
    return out;
  }

  /** The earliest deadline among waiting cars. */
  nextDeadline(): number | undefined {
    return this.earliest()?.deadline;
  }

  /** The waiting car with the earliest deadline; drops finished cars off the top on the way. */
  private earliest(): WaitingCar | undefined {
    const h = this.deadlines;
    for (let top = h.peek(); top !== undefined && this.cars.get(top.key) !== top; top = h.peek()) h.pop();
    return h.peek();
  }

  private sku(sku: string): SkuState {
    let s = this.skus.get(sku);
    if (!s) {
      s = { waiters: new Map(), attempts: 0, notBefore: 0, queued: false };
      this.skus.set(sku, s);
    }
    return s;
  }

  private enqueue(sku: string, s: SkuState): void {
    if (s.waiters.size === 0) {
      if (s.inFlightSentAt === undefined) this.skus.delete(sku);
      return;
    }
    if (!s.queued) {
      s.queued = true;
      this.queue.push(sku);
    }
  }

  private finishIfPriced(w: WaitingCar, now: number): void {
    if (w.unpriced > 0) return;
    let total = 0;
    for (const i of w.partSku) total += w.cents[i]!;
    // In part order, so an output does not depend on the order the responses came in.
    const prices: Record<string, number> = {};
    w.skus.forEach((sku, i) => (prices[sku] = centsToAmount(w.cents[i]!)));
    this.finished.push({ ...w.car, situation: "COMPLETED", prices, totalPrice: centsToAmount(total), pricedAt: now });
    this.forget(w);
  }

  private forget(w: WaitingCar): void {
    this.cars.delete(w.key);
    for (const sku of w.skus) this.skus.get(sku)?.waiters.delete(w);
    // Rebuilding costs O(waiting) once per ~waiting forgotten cars: O(1) amortised.
    if (this.deadlines.size > 2 * this.cars.size + 64) {
      this.deadlines = newDeadlineHeap();
      for (const live of this.cars.values()) this.deadlines.push(live);
    }
  }
}

function newDeadlineHeap(): MinHeap<WaitingCar> {
  return new MinHeap<WaitingCar>((a, b) => a.deadline < b.deadline);
}
