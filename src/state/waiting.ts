// Changelog value of a car waiting for prices: the assembled car and when it began waiting,
// so a restarted engine re-prices it with its original deadline.
//
// JSON, not MessagePack: this is written on the main thread for every assembled car, and
// under Bun JSON.stringify of a car takes ~1.4 µs against msgpackr's ~3.2 µs (the CPU profile
// of a backlog run had msgpackr at 9 % of the main thread). Entries written as MessagePack by
// earlier versions still decode: a JSON object starts with "{", a MessagePack map never does.
import { unpack } from "msgpackr";
import type { Car } from "../domain.ts";

export interface WaitingCar {
  car: Car;
  waitingSince: number;
}

const OPEN_BRACE = 0x7b;

export function encodeWaitingCar(car: Car, waitingSince: number): Buffer {
  return Buffer.from(JSON.stringify({ car, waitingSince } satisfies WaitingCar));
}

export function decodeWaitingCar(bytes: Uint8Array): WaitingCar {
  let w: WaitingCar | undefined;
  try {
    w = (bytes[0] === OPEN_BRACE ? JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) : unpack(bytes)) as WaitingCar;
  } catch (e) {
    throw new Error(`changelog: unreadable waiting-car entry (${(e as Error).message})`);
  }
  if (typeof w?.waitingSince !== "number" || typeof w.car?.carId !== "string") throw new Error("changelog: malformed waiting-car entry");
  return w;
}
