// decodePart (SPEC §3, §8): valid parts of every kind, every dead-letter class with the field
// it names, the validation order, and exact agreement with validate.ts (the generator's model).
import { describe, expect, test } from "bun:test";
import { classOfReason, INPUT_ROLES, KIND_OF_ROLE, type InputRole } from "../src/domain.ts";
import { decodePart, keyIsCarId } from "../src/ingest/decode.ts";
import { validatePart } from "../src/ingest/validate.ts";
import { makeMalformed, MALFORMED_CLASSES } from "../src/generate/malformed.ts";
import { createRng } from "../src/generate/prng.ts";

const MAX = 65536;
type Obj = Record<string, unknown>;

function valid(role: InputRole, carId = "car-1"): Obj {
  const base = { carId, partId: `${carId}-${role}`, sku: "SKU-1" };
  switch (role) {
    case "body":
      return { ...base, color: "red", material: "ABS", weightKg: 1.25 };
    case "engine":
      return base;
    case "remoteControl":
      return { ...base, channelFrequency: "RF_49" };
    case "wheel":
      return { ...base, placement: "REAR_LEFT" };
  }
}

const bytes = (o: unknown) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o));
const key = (k: string | null) => (k === null ? null : Buffer.from(k));

function decode(role: InputRole, value: unknown, max = MAX) {
  return decodePart(role, value === null ? null : Buffer.isBuffer(value) ? value : bytes(value), max);
}

function reasonOf(role: InputRole, value: unknown, max = MAX): string {
  const d = decode(role, value, max);
  if (d.ok) throw new Error(`expected a dead letter, got a part`);
  return d.reason;
}

const edit = (role: InputRole, f: (o: Obj) => void) => {
  const o = valid(role);
  f(o);
  return o;
};

describe("valid parts", () => {
  test("each kind decodes to its part with the kind of its topic", () => {
    for (const role of INPUT_ROLES) {
      const d = decode(role, valid(role));
      expect(d.ok).toBe(true);
      if (!d.ok) continue;
      expect(d.kind).toBe(KIND_OF_ROLE[role]);
      expect(d.part).toEqual(valid(role) as never);
    }
  });

  test("unknown extra fields are kept as they came (nested, arrays, null, non-ASCII, big numbers)", () => {
    const extra = { factory: { line: 3, shift: "night" }, tags: ["a", "b"], note: null, inspector: "Zoë Müller ✓ 佐藤", serial: 1_234_567_890_123 };
    const d = decode("wheel", { ...valid("wheel"), ...extra });
    expect(d.ok && d.part).toEqual({ ...valid("wheel"), ...extra } as never);
  });

  test("limits are inclusive: carId/partId of 128 chars, sku of 64, a value of exactly maxPartBytes", () => {
    const id = "c".repeat(128);
    expect(decode("engine", { carId: id, partId: "p".repeat(128), sku: "s".repeat(64) }).ok).toBe(true);
    const v = bytes(valid("engine"));
    expect(decode("engine", v, v.length).ok).toBe(true);
  });

  test("a non-ASCII carId decodes, and matches a key with the same UTF-8 bytes", () => {
    const carId = "wagen-Größe-车";
    const d = decode("engine", { carId, partId: "p", sku: "s" });
    expect(d.ok && d.part.carId).toBe(carId);
    expect(keyIsCarId(key(carId), carId)).toBe(true);
  });

  test("a UTF-8 byte-order mark is allowed, as a UTF-8 decoder drops it", () => {
    const v = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(valid("engine"))]);
    expect(decode("engine", v).ok).toBe(true);
  });
});

describe("dead-letter classes", () => {
  test("OVERSIZED: one byte over maxPartBytes, checked before anything else", () => {
    const v = bytes(valid("engine"));
    expect(reasonOf("engine", v, v.length - 1)).toStartWith("OVERSIZED: value is");
    expect(reasonOf("engine", Buffer.alloc(100, 0xff), 99)).toStartWith("OVERSIZED:");
  });

  test("NOT_JSON: tombstone, invalid UTF-8, truncated, and JSON that is not an object", () => {
    expect(reasonOf("body", null)).toBe("NOT_JSON: value is null (tombstone)");
    expect(reasonOf("body", Buffer.from([0xc3, 0x28, 0x7b, 0x7d]))).toStartWith("NOT_JSON: value is not UTF-8 JSON");
    expect(reasonOf("body", '{"carId":"car-1","partId":')).toStartWith("NOT_JSON: value is not UTF-8 JSON");
    expect(reasonOf("body", "")).toStartWith("NOT_JSON:");
    for (const v of ["[]", '"text"', "42", "null", "true", `[${JSON.stringify(valid("body"))}]`]) {
      expect(reasonOf("body", v)).toBe("NOT_JSON: value is not a JSON object");
    }
  });

  test("MISSING_FIELD names the field: carId, partId, sku, then the kind's own, in that order", () => {
    const cases: Array<[InputRole, string]> = [
      ["engine", "carId"],
      ["engine", "partId"],
      ["engine", "sku"],
      ["body", "color"],
      ["body", "material"],
      ["body", "weightKg"],
      ["remoteControl", "channelFrequency"],
      ["wheel", "placement"],
    ];
    for (const [role, field] of cases) {
      expect(
        reasonOf(
          role,
          edit(role, (o) => delete o[field]),
        ),
      ).toBe(`MISSING_FIELD: ${field} is missing`);
    }
    // Several missing: the first in order is named.
    expect(
      reasonOf(
        "body",
        edit("body", (o) => (delete o.weightKg, delete o.sku)),
      ),
    ).toBe("MISSING_FIELD: sku is missing");
    expect(
      reasonOf(
        "body",
        edit("body", (o) => (delete o.weightKg, delete o.color)),
      ),
    ).toBe("MISSING_FIELD: color is missing");
  });

  test("WRONG_TYPE names the field; null is a wrong type, not a missing field", () => {
    const cases: Array<[InputRole, string, unknown, string]> = [
      ["engine", "carId", 7, "string"],
      ["engine", "partId", null, "string"],
      ["engine", "sku", ["SKU-1"], "string"],
      ["body", "color", false, "string"],
      ["body", "material", {}, "string"],
      ["body", "weightKg", "1.25", "number"],
      ["remoteControl", "channelFrequency", 27, "string"],
      ["wheel", "placement", null, "string"],
    ];
    for (const [role, field, value, type] of cases) {
      expect(
        reasonOf(
          role,
          edit(role, (o) => (o[field] = value)),
        ),
      ).toBe(`WRONG_TYPE: ${field} is not a ${type}`);
    }
  });

  test("BAD_VALUE: empty or too long strings, weightKg not > 0 or not finite, unknown enum values", () => {
    const cases: Array<[InputRole, string, unknown, string]> = [
      ["engine", "carId", "", "carId is empty"],
      ["engine", "carId", "c".repeat(129), "carId is longer than 128 chars"],
      ["engine", "partId", "", "partId is empty"],
      ["engine", "partId", "p".repeat(129), "partId is longer than 128 chars"],
      ["engine", "sku", "", "sku is empty"],
      ["engine", "sku", "s".repeat(65), "sku is longer than 64 chars"],
      ["body", "color", "", "color is empty"],
      ["body", "material", "", "material is empty"],
      ["body", "weightKg", 0, "weightKg 0 is not > 0"],
      ["body", "weightKg", -1.5, "weightKg -1.5 is not > 0"],
      ["remoteControl", "channelFrequency", "RF_99", 'channelFrequency "RF_99" is not one of RF_27, RF_49, RF_50, RF_53, RF_72, RF_75'],
      ["wheel", "placement", "MIDDLE", 'placement "MIDDLE" is not one of FRONT_LEFT, FRONT_RIGHT, REAR_LEFT, REAR_RIGHT'],
      ["wheel", "placement", "front_left", 'placement "front_left" is not one of FRONT_LEFT, FRONT_RIGHT, REAR_LEFT, REAR_RIGHT'],
    ];
    for (const [role, field, value, detail] of cases) {
      expect(
        reasonOf(
          role,
          edit(role, (o) => (o[field] = value)),
        ),
      ).toBe(`BAD_VALUE: ${detail}`);
    }
    // JSON has no Infinity literal, but 1e999 parses to it.
    const inf = JSON.stringify(valid("body")).replace('"weightKg":1.25', '"weightKg":1e999');
    expect(reasonOf("body", inf)).toBe("BAD_VALUE: weightKg Infinity is not > 0");
  });

  test("keyIsCarId: equal UTF-8 bytes only, ASCII or not", () => {
    expect(keyIsCarId(key("car-1"), "car-1")).toBe(true);
    expect(keyIsCarId(null, "car-1")).toBe(false);
    for (const k of ["CAR-1", "car-1 ", "car-2", "car-", "", "car-1\u0000"]) expect(keyIsCarId(key(k), "car-1")).toBe(false);
    expect(keyIsCarId(key("wagen-ü"), "wagen-ü")).toBe(true);
    expect(keyIsCarId(key("wagen-u"), "wagen-ü")).toBe(false);
    expect(keyIsCarId(Buffer.from([0xff]), "\ufffd")).toBe(true); // a key that is not UTF-8 reads as its dead letter's key text does
  });

  test("validation order: the first failing class wins", () => {
    // MISSING_FIELD before WRONG_TYPE, whatever the field order.
    expect(
      reasonOf(
        "body",
        edit("body", (o) => ((o.carId = 1), delete o.weightKg)),
      ),
    ).toBe("MISSING_FIELD: weightKg is missing");
    // WRONG_TYPE before BAD_VALUE.
    expect(
      reasonOf(
        "body",
        edit("body", (o) => ((o.carId = ""), (o.weightKg = "x"))),
      ),
    ).toBe("WRONG_TYPE: weightKg is not a number");
    // OVERSIZED before NOT_JSON.
    expect(reasonOf("engine", "x".repeat(200), 100)).toStartWith("OVERSIZED:");
  });
});

describe("agreement with validate.ts (the generator's reference model)", () => {
  const reference = (role: InputRole, v: Uint8Array | null) => {
    const r = validatePart(KIND_OF_ROLE[role], v, MAX);
    return r.ok ? "ok" : `${r.cls}: ${r.detail}`;
  };
  const ours = (role: InputRole, v: Uint8Array | null) => {
    const d = decodePart(role, v === null ? null : Buffer.from(v), MAX);
    return d.ok ? "ok" : d.reason;
  };

  test("every malformed record the generator makes gets the same reason, and its class", () => {
    const rng = createRng(11);
    for (const cls of MALFORMED_CLASSES) {
      for (let variant = 0; variant < 30; variant++) {
        const m = makeMalformed(
          { cls, variant, carId: `car-${variant}`, partId: `p-${cls}-${variant}`, maxPartBytes: 512, sku: { skus: 20, distinctSkus: false } },
          rng,
        );
        const d = decodePart(m.role, Buffer.from(m.value), 512);
        expect(d.ok).toBe(false);
        if (!d.ok) expect(classOfReason(d.reason)).toBe(cls);
        const r = validatePart(KIND_OF_ROLE[m.role], m.value, 512);
        expect(d.ok ? "ok" : d.reason).toBe(r.ok ? "ok" : `${r.cls}: ${r.detail}`);
        expect(decodePart(m.role, Buffer.from(m.repaired.value), 512).ok).toBe(true);
      }
    }
  });

  test("random mutations of valid parts: identical verdicts", () => {
    const rng = createRng(5);
    const values: unknown[] = [undefined, null, "", "x", "c".repeat(129), "s".repeat(65), 0, -1, 2.5, true, [], {}, "RF_27", "FRONT_RIGHT", "MIDDLE"];
    const fields = ["carId", "partId", "sku", "color", "material", "weightKg", "channelFrequency", "placement", "extra"];
    let checked = 0;
    for (let i = 0; i < 5000; i++) {
      const role = rng.pick(INPUT_ROLES);
      const o = valid(role, rng.chance(0.5) ? "car-1" : "wagen-ü");
      for (let m = 1 + rng.int(3); m > 0; m--) {
        const f = rng.pick(fields);
        const v = rng.pick(values);
        if (v === undefined) delete o[f];
        else o[f] = v;
      }
      const v = rng.chance(0.05) ? null : new TextEncoder().encode(rng.chance(0.05) ? JSON.stringify(o).slice(0, 20) : JSON.stringify(o));
      expect(ours(role, v)).toBe(reference(role, v));
      checked++;
    }
    expect(checked).toBe(5000);
  });
});
