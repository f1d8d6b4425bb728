// What a correct engine writes for a model result, with a price API that never fails: the
// output records the verifier must accept. Tests build on it (and mutate it to make the
// verifier fail); it also documents the output format the verifier expects.
import type { Topics } from "../config.ts";
import { catalogPriceCents, centsToAmount, type Car, type DeadLetter } from "../domain.ts";
import type { ModelCar, ModelResult } from "./model.ts";

export interface OutputRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Uint8Array;
}

const encoder = new TextEncoder();

export function referenceCar(c: ModelCar): Car {
  const p = c.parts;
  const car: Car = { carId: c.carId, situation: c.situation, missing: c.missing, wheels: p.wheels, firstPartAt: c.firstPartAt, assembledAt: c.emittedAt };
  if (p.body) car.body = p.body;
  if (p.engine) car.engine = p.engine;
  if (p.remoteControl) car.remoteControl = p.remoteControl;
  if (c.situation === "COMPLETED") {
    const all = [p.body!, p.engine!, p.remoteControl!, ...p.wheels];
    car.prices = Object.fromEntries(all.map((x) => [x.sku, centsToAmount(catalogPriceCents(x.sku))]));
    car.totalPrice = centsToAmount(c.totalCents!);
    car.pricedAt = c.emittedAt;
  }
  return car;
}

/** Offsets count up per topic on partition 0; where the records really land is up to whoever writes them. */
export function referenceOutputs(model: ModelResult, topics: Topics): OutputRecord[] {
  const next = new Map<string, number>();
  const place = (topic: string, key: string | null, value: unknown): OutputRecord => {
    const offset = next.get(topic) ?? 0;
    next.set(topic, offset + 1);
    return { topic, partition: 0, offset: String(offset), key, value: encoder.encode(JSON.stringify(value)) };
  };
  const out: OutputRecord[] = model.cars.map((c) => place(c.situation === "COMPLETED" ? topics.completed : topics.incomplete, c.carId, referenceCar(c)));
  for (const d of model.deadLetters) {
    const dl: DeadLetter = {
      topic: d.topic,
      partition: d.partition,
      offset: d.offset,
      key: d.key,
      value: d.value === null ? (null as unknown as string) : Buffer.from(d.value).toString("base64"),
      reason: `${d.cls}: ${d.detail}`,
    };
    out.push(place(topics.dlq, d.key, dl));
  }
  return out;
}
