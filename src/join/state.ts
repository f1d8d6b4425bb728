// What the compacted changelog keeps of one carId (key = the carId, value = codec.ts bytes):
// enough to rebuild a JoinShard exactly after a crash or a rebalance. Plain data, so it also
// crosses threads by structured clone.
import type { Body, Engine, RemoteControl, Wheel } from "../domain.ts";

/** The car's open window: its first part's timestamp and the parts it holds so far, packed (car.ts). */
export interface OpenCarState {
  firstPartAt: number;
  /** PackedParts (see car.ts): the parts in arrival order, relative to the carId. */
  parts: string;
}

/** How earlier versions wrote an open window: the parsed parts. Still read (codec.ts converts it). */
export interface LegacyOpenCarState {
  firstPartAt: number;
  body?: Body;
  engine?: Engine;
  remoteControl?: RemoteControl;
  /** In arrival order. */
  wheels: Wheel[];
}

/** The partIds of a car that left the join, remembered to absorb redeliveries. */
export interface RecentCar {
  partIds: string[];
  /** Event time until which they are remembered: the emission's event time + dedupRetentionMs. */
  until: number;
}

/** A carId's join state. A carId with neither is deleted (a tombstone in the changelog). */
export interface CarState {
  open?: OpenCarState;
  /** Oldest first. */
  recent?: RecentCar[];
}
