// Changelog value of a car waiting for prices: the assembled car and when it began waiting,
// so a restarted engine re-prices it with its original deadline.
import { pack, unpack } from "msgpackr";
import type { Car } from "../domain.ts";

export interface WaitingCar {
  car: Car;
  waitingSince: number;
}

export function encodeWaitingCar(car: Car, waitingSince: number): Uint8Array {
  return pack({ car, waitingSince } satisfies WaitingCar);
}

export function decodeWaitingCar(bytes: Uint8Array): WaitingCar {
  const w = unpack(bytes) as WaitingCar;
  if (typeof w?.waitingSince !== "number" || typeof w.car?.carId !== "string") throw new Error("changelog: malformed waiting-car entry");
  return w;
}
