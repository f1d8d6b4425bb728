// What a price answer is worth (SPEC §5), pure: every shape a misbehaving service can send.
import { describe, expect, test } from "bun:test";
import { engineSpec, loadEngineSettings } from "../src/config.ts";
import { amountToCents } from "../src/domain.ts";
import { judgeAnswer } from "../src/pricing/answer.ts";

const MAX = 100_000;
const judge = (body: string, asked = "SKU-1", status = 200, max = MAX) => judgeAnswer(asked, status, body, max);

describe("price answers", () => {
  test("a usable price becomes exact integer cents", () => {
    expect(judge('{"sku":"SKU-1","price":12.34}')).toEqual({ cents: 1234 });
    expect(judge('{"price":0.1}')).toEqual({ cents: 10 }); // sku is optional
    expect(judge('{"sku":"SKU-1","price":0}')).toEqual({ cents: 0 });
    expect(judge('{"sku":"SKU-1","price":-0}')).toEqual({ cents: 0 });
    expect(Object.is((judge('{"price":-0}') as { cents: number }).cents, 0)).toBe(true);
    expect(judge('{"sku":"SKU-1","price":100000}')).toEqual({ cents: 10_000_000 }); // the maximum itself
    expect(judge('{"sku":"SKU-1","price":99999.99}')).toEqual({ cents: 9_999_999 });
    expect(judge('{"sku":"SKU-1","price":1.10,"currency":"EUR"}')).toEqual({ cents: 110 }); // extra fields are fine
  });

  test.each([
    ["non-200", 503, '{"error":"x"}', "HTTP 503"],
    ["HTML", 200, "<html><body>Service temporarily unavailable, try later</body></html>", 'body is not JSON: "<html><body>Service temporarily unavaila…"'],
    ["NaN literal", 200, '{"sku":"SKU-1","price":NaN}', "body is not JSON"],
    ["empty body", 200, "", "body is not JSON: empty"],
    ["JSON that is not an object", 200, "12.34", "body is a number, not a JSON object"],
    ["JSON null", 200, "null", "body is null, not a JSON object"],
    ["an array", 200, "[12.34]", "body is an array, not a JSON object"],
    ["price as a string", 200, '{"sku":"SKU-1","price":"12.34"}', "price is a string"],
    ["null price", 200, '{"sku":"SKU-1","price":null}', "price is null"],
    ["no price", 200, '{"sku":"SKU-1"}', "answer has no price"],
    ["an object price", 200, '{"sku":"SKU-1","price":{"amount":1}}', "price is an object"],
    ["three decimals", 200, '{"sku":"SKU-1","price":12.345}', "price 12.345 is not whole cents"],
    ["a fraction of a cent", 200, '{"sku":"SKU-1","price":0.0000001}', "price 1e-7 is not whole cents"],
    ["negative", 200, '{"sku":"SKU-1","price":-5}', "price -5 is negative"],
    ["1e18", 200, '{"sku":"SKU-1","price":1e18}', "price 1000000000000000000 is above PRICE_MAX_AMOUNT=100000"],
    ["a cent above the maximum", 200, '{"sku":"SKU-1","price":100000.01}', "price 100000.01 is above PRICE_MAX_AMOUNT=100000"],
    ["infinite", 200, '{"sku":"SKU-1","price":1e999}', "price Infinity is not a finite number"],
    ["another SKU", 200, '{"sku":"SKU-2","price":12.34}', 'answer is for sku "SKU-2", not "SKU-1"'],
    ["a sku that is not a string", 200, '{"sku":7,"price":12.34}', 'answer is for sku 7, not "SKU-1"'],
  ])("%s is a failure that names what was wrong", (_, status, body, reason) => {
    const verdict = judge(body, "SKU-1", status);
    expect(verdict).toEqual({ error: expect.stringContaining(reason) });
    expect("cents" in verdict).toBe(false);
  });

  test("the sku is checked before the price: a good price for another SKU is still refused", () => {
    expect(judge('{"sku":"SKU-2","price":-1}')).toEqual({ error: 'answer is for sku "SKU-2", not "SKU-1"' });
  });

  test("the maximum is the one given, and is checked before the cents (no precision loss decides)", () => {
    expect(judge('{"price":12.34}', "S", 200, 10)).toEqual({ error: "price 12.34 is above PRICE_MAX_AMOUNT=10" });
    expect(judge('{"price":1e15}', "S", 200, 1e12)).toEqual({ error: "price 1000000000000000 is above PRICE_MAX_AMOUNT=1000000000000" });
    // At the largest allowed maximum, seven parts' cents still add up exactly.
    const top = judge('{"price":999999999999.99}', "S", 200, 1e12) as { cents: number };
    expect(top.cents).toBe(99_999_999_999_999);
    expect(Number.isSafeInteger(top.cents * 7)).toBe(true);
  });
});

describe("amountToCents", () => {
  test("exact for whole cents at any magnitude a price can have, null otherwise", () => {
    expect(amountToCents(12.34)).toBe(1234);
    expect(amountToCents(0.29)).toBe(29); // 0.29 * 100 = 28.999999999999996
    expect(amountToCents(123456789012.34)).toBe(12345678901234); // float error above a fixed 1e-6
    expect(amountToCents(-5)).toBe(-500);
    expect(amountToCents(12.345)).toBeNull();
    expect(amountToCents(1e18)).toBeNull(); // 1e20 cents: past exact integers
    expect(amountToCents(1e21)).toBeNull();
    expect(amountToCents(Number.NaN)).toBeNull();
    expect(amountToCents(Number.POSITIVE_INFINITY)).toBeNull();
  });
});

describe("PRICE_MAX_AMOUNT", () => {
  const env = (v: string) => ({ env: { PRICE_MAX_AMOUNT: v }, argv: [] });
  test("defaults to 100000.00, takes whole-cent amounts", () => {
    expect(engineSpec.priceMaxAmount.default).toBe(100_000);
    expect(loadEngineSettings({ env: {}, argv: [] }).engine.priceMaxAmount).toBe(100_000);
    expect(loadEngineSettings(env("250.50")).engine.priceMaxAmount).toBe(250.5);
  });
  test.each(["0", "-1", "12.345", "1e18", "lots", "2000000000000"])("refuses %p with a line naming the setting", (v) => {
    expect(() => loadEngineSettings(env(v))).toThrow(/^PRICE_MAX_AMOUNT=/);
  });
});
