// What one HTTP answer of the price API is worth (SPEC §5): a usable price in integer cents, or
// the reason it is not. Pure: the dispatcher reads the status and the body, this judges them.
import { amountToCents } from "../domain.ts";

export type AnswerVerdict = { cents: number } | { error: string };

/** How much of an unusable body an error quotes: enough to recognise it, never a whole page. */
const QUOTE_CHARS = 40;

/**
 * Judges the answer to `GET /price/{askedSku}`. A usable answer is 200 with a JSON object whose
 * `price` is a finite number, not negative, at most `maxAmount`, in whole cents, and whose
 * `sku`, when present, is the SKU asked for. The maximum is checked before the conversion to
 * cents, so an absurd amount (1e18) is named as such rather than lost to float precision.
 */
export function judgeAnswer(askedSku: string, status: number, bodyText: string, maxAmount: number): AnswerVerdict {
  if (status !== 200) return { error: `HTTP ${status}` };
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return { error: `body is not JSON: ${quote(bodyText)}` };
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) return { error: `body is ${typeName(body)}, not a JSON object` };
  const answer = body as { sku?: unknown; price?: unknown };
  if (answer.sku !== undefined && answer.sku !== askedSku) return { error: `answer is for sku ${JSON.stringify(answer.sku)}, not ${JSON.stringify(askedSku)}` };
  if (!("price" in answer)) return { error: "answer has no price" };
  const price = answer.price;
  if (typeof price !== "number") return { error: `price is ${typeName(price)}` };
  // JSON has no NaN or Infinity literal, but 1e999 parses as Infinity.
  if (!Number.isFinite(price)) return { error: `price ${price} is not a finite number` };
  if (price < 0) return { error: `price ${price} is negative` };
  if (price > maxAmount) return { error: `price ${price} is above PRICE_MAX_AMOUNT=${maxAmount}` };
  const cents = amountToCents(price);
  if (cents === null) return { error: `price ${price} is not whole cents` };
  // -0 is a price of zero.
  return { cents: cents + 0 };
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  const t = typeof v;
  return t === "object" ? "an object" : `a ${t}`;
}

function quote(text: string): string {
  const t = text.trim();
  if (t === "") return "empty";
  return JSON.stringify(t.length > QUOTE_CHARS ? `${t.slice(0, QUOTE_CHARS)}…` : t);
}
