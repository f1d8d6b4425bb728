// A fingerprint of a car's parts "as received" (SPEC §3): the verifier recomputes it from the
// engine's output, which catches dropped or altered fields, including unknown extra fields
// that must pass through. Key order and wheel order do not matter; every value does.
import { createHash } from "node:crypto";

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function partsDigest(parts: readonly unknown[]): string {
  const lines = parts.map(canonicalJson).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 32);
}
