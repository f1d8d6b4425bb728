// Micro benchmarks (tinybench) of the hot path's pieces, and the worker hop by batch size.
import { Bench } from "tinybench";
import { pack, unpack } from "msgpackr";
import { Piscina } from "piscina";
import { decodePart } from "../src/ingest/decode.ts";
import { JoinShard } from "../src/join/shard.ts";
import { TimerHeap } from "../src/join/timers.ts";
import { shardOf } from "../src/join/route.ts";
import { TokenBucket } from "../src/pricing/token-bucket.ts";
import { PriceCoalescer } from "../src/pricing/coalesce.ts";
import { encodeWaitingCar } from "../src/state/waiting.ts";
import type { Car, Part } from "../src/domain.ts";
import { moving, pack as packRecords } from "../src/join/batch.ts";

export interface MicroResult {
  opsPerSecond: Record<string, number>;
  /** Part objects by structured clone (the engine before 2026-11) vs raw records packed and moved (now). */
  hopNsPerRecord: Record<string, number>;
  joinNsPerPart: number;
  hopStopsDominatingAt: number | null;
}

const wheel = (car: number, p: string): Part => ({ carId: `car-${car}`, partId: `car-${car}-${p}`, sku: `WH-${car % 20}`, placement: p }) as Part;

export async function runMicro(log: (line: string) => void): Promise<MicroResult> {
  const body = { carId: "car-1", partId: "car-1-B", sku: "BD-0001", color: "red", material: "abs", weightKg: 1.25 };
  const json = Buffer.from(JSON.stringify(body));
  const packed = pack(body);
  const key = Buffer.from("car-1");
  // A stream of complete cars' wheels and bodies: every 5th part completes nothing, as in life.
  const parts: Array<{ part: Part; kind: "WHEEL" }> = [];
  for (let c = 0; c < 20_000; c++) for (const p of ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"]) parts.push({ part: wheel(c, p), kind: "WHEEL" });
  let shard = new JoinShard({ joinTimeoutMs: 5000, dedupRetentionMs: 60000 });
  let i = 0;
  let t = 0;
  const heap = new TimerHeap();
  const bucket = new TokenBucket(1e9, 1e9);
  // The pricing dispatcher's work per assembled car with 10,000+ cars already waiting (they
  // pile up: nothing answers): add it, expire, ask for the next deadline, as every add and
  // every response makes the shell do.
  const car = (n: number): Car =>
    ({
      carId: `car-${n}`,
      situation: "AWAITING_PRICE",
      missing: [],
      body: { ...body, carId: `car-${n}` },
      engine: { carId: `car-${n}`, partId: `e${n}`, sku: "EN-0001" },
      remoteControl: { carId: `car-${n}`, partId: `r${n}`, sku: "RC-0001", channelFrequency: "RF_27" },
      wheels: ["FRONT_LEFT", "FRONT_RIGHT", "REAR_LEFT", "REAR_RIGHT"].map((p) => wheel(n, p)),
      firstPartAt: 0,
      assembledAt: 0,
    }) as Car;
  const waitingSet = new PriceCoalescer({ deadlineMs: 1e12, maxWaitingCars: 1e9, cacheTtlMs: 0, retryBaseMs: 100, retryMaxMs: 1000, random: Math.random });
  for (let n = 0; n < 10_000; n++) waitingSet.add(car(n), n, n);
  let nextCar = 10_000;
  const assembled = car(1);

  const bench = new Bench({ time: 400 });
  bench
    .add("decode part (JSON + validation)", () => void decodePart("body", json, 65536))
    .add("msgpackr unpack of the same part", () => void unpack(packed))
    .add("join step (one part)", () => {
      if (i === parts.length) {
        i = 0;
        shard = new JoinShard({ joinTimeoutMs: 5000, dedupRetentionMs: 60000 });
      }
      const p = parts[i++]!;
      shard.onPart(p.part, p.kind, ++t, { topic: "t", partition: 0, offset: "0" });
    })
    .add("timer add + pop", () => {
      heap.add(++t, "car");
      heap.popDue(t);
    })
    .add("shard routing of a carId", () => void shardOf("car-123456-x", 16))
    .add("token bucket take", () => void bucket.tryTake(++t))
    .add("pricing: add a car + expire + next deadline, ≥ 10,000 waiting", () => {
      const n = nextCar++;
      waitingSet.add(car(n), n, n);
      waitingSet.expire(n);
      waitingSet.nextDeadline();
    })
    .add("waiting-car changelog entry (JSON)", () => void encodeWaitingCar(assembled, 1))
    .add("the same entry as msgpackr", () => void pack({ car: assembled, waitingSince: 1 }));
  log("micro: tinybench ...");
  await bench.run();
  const ops: Record<string, number> = {};
  for (const task of bench.tasks) ops[task.name] = Math.round((task.result as { throughput?: { mean: number } }).throughput?.mean ?? 0);
  const joinNsPerPart = 1e9 / ops["join step (one part)"]!;

  // The worker hop: a batch of N part-sized records to a worker and back, as part objects
  // (structured clone) and as the engine sends them now (raw bytes packed into one buffer
  // that is moved, packing included).
  const pool = new Piscina({ filename: new URL("./echo-worker.ts", import.meta.url).pathname, minThreads: 1, maxThreads: 1, idleTimeout: Infinity });
  const hop: Record<string, number> = {};
  let stopsAt: number | null = null;
  for (const n of [1, 10, 100, 1000, 10000]) {
    const rounds = Math.max(5, Math.floor(20000 / n));
    const objects = Array.from({ length: n }, (_, k) => ({
      kind: "WHEEL",
      part: parts[k % parts.length]!.part,
      timestamp: k,
      source: { topic: "t", partition: 0, offset: String(k) },
    }));
    const raw = objects.map((o, k) => ({
      lane: 3,
      replay: false,
      record: { offset: String(k), timestamp: k, key: Buffer.from(o.part.carId), value: Buffer.from(JSON.stringify(o.part)) },
    }));
    const perRecord = async (send: () => Promise<unknown>) => {
      await send();
      const t0 = performance.now();
      for (let r = 0; r < rounds; r++) await send();
      return ((performance.now() - t0) * 1e6) / (rounds * n);
    };
    const cloned = await perRecord(() => pool.run(objects));
    const moved = await perRecord(() => {
      const b = packRecords(0, raw, 0);
      return pool.run(b, moving([b]) as Parameters<Piscina["run"]>[1]);
    });
    hop[`batch ${n}, part objects cloned`] = Math.round(cloned);
    hop[`batch ${n}, raw records packed and moved`] = Math.round(moved);
    if (stopsAt === null && moved < joinNsPerPart) stopsAt = n;
    log(`micro: worker hop batch ${n}: ${Math.round(cloned)} ns/record cloned, ${Math.round(moved)} ns/record packed`);
  }
  await pool.destroy();
  return { opsPerSecond: ops, hopNsPerRecord: hop, joinNsPerPart: Math.round(joinNsPerPart), hopStopsDominatingAt: stopsAt };
}
