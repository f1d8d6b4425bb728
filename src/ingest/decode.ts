// Decoding an input record into a part, or the dead-letter reason it earns instead.
import type { InputRole, Part } from "../domain.ts";
import { deadLetterReason, KIND_OF_ROLE } from "../domain.ts";
import { validatePart } from "./validate.ts";

export type Decoded = { ok: true; part: Part } | { ok: false; reason: string };

export function decodePart(role: InputRole, key: Buffer | null, value: Buffer | null, maxPartBytes: number): Decoded {
  const v = validatePart(KIND_OF_ROLE[role], key === null ? null : key.toString("utf8"), value, maxPartBytes);
  return v.ok ? v : { ok: false, reason: deadLetterReason(v.cls, v.detail) };
}
