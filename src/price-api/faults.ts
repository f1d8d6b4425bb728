// The mock price API's per-SKU fault table: for the SKUs it names, a 200 answer that is not a
// usable price (SPEC §5), so tests can make every such shape happen over real HTTP.

/** The shapes a misbehaving price service sends with status 200. */
export const PRICE_FAULTS = [
  "string", // {"sku": S, "price": "12.34"}
  "nan", // {"sku": S, "price": NaN}: the literal, which is not JSON
  "html", // an HTML error page
  "null", // {"sku": S, "price": null}
  "no-price", // {"sku": S}
  "three-decimals", // {"sku": S, "price": 12.345}
  "negative", // {"sku": S, "price": -5}
  "huge", // {"sku": S, "price": 1e18}
  "other-sku", // a valid price, for another SKU
  "trickle", // a valid answer, one byte every TRICKLE_BYTE_MS: slower than any client timeout
  "reset", // half the body, then the connection is reset
] as const;
export type PriceFault = (typeof PRICE_FAULTS)[number];

/** SKU → the fault it answers with. SKUs not in the table are answered normally. */
export type FaultTable = Readonly<Record<string, PriceFault>>;

/** A trickled answer of ~25 bytes takes seconds: longer than a sane request timeout. */
export const TRICKLE_BYTE_MS = 200;

export const FAULT_TABLE_FORMAT = `SKU=FAULT pairs separated by commas, FAULT one of ${PRICE_FAULTS.join(", ")}`;

/** Parses `SKU-1=negative,SKU-2=html`; undefined when anything in it is not a known pair. */
export function parseFaultTable(raw: string): FaultTable | undefined {
  const pairs: Array<[string, PriceFault]> = [];
  for (const pair of raw.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq < 0) return undefined;
    const sku = pair.slice(0, eq).trim();
    const fault = pair.slice(eq + 1).trim();
    if (sku === "" || !isFault(fault)) return undefined;
    pairs.push([sku, fault]);
  }
  // Own properties whatever the SKU (fromEntries defines even "__proto__").
  return Object.fromEntries(pairs);
}

/** Checks a fault table given as JSON (live reconfiguration); returns why it is refused, or undefined. */
export function invalidFaultTable(table: unknown): string | undefined {
  if (table === null || typeof table !== "object" || Array.isArray(table)) return "faults must be an object of SKU → fault";
  for (const [sku, fault] of Object.entries(table)) {
    if (sku === "") return "a fault's SKU must not be empty";
    if (!isFault(fault)) return `fault ${JSON.stringify(fault)} of SKU ${JSON.stringify(sku)} is not one of ${PRICE_FAULTS.join(", ")}`;
  }
  return undefined;
}

function isFault(v: unknown): v is PriceFault {
  return (PRICE_FAULTS as readonly unknown[]).includes(v);
}

/**
 * The 200 answer of a faulty SKU. `price` is the SKU's real price (the shapes that keep a
 * price keep this one). `done` is called once the answer has been sent or given up, so the
 * caller's concurrency slot covers the whole trickle.
 */
export function faultyAnswer(fault: PriceFault, sku: string, price: number, done: () => void): Response {
  const json = (text: string) => {
    done();
    return new Response(text, { headers: { "content-type": "application/json" } });
  };
  const valid = JSON.stringify({ sku, price });
  switch (fault) {
    case "string":
      return json(JSON.stringify({ sku, price: String(price) }));
    case "nan":
      return json(`{"sku":${JSON.stringify(sku)},"price":NaN}`);
    case "html":
      done();
      return new Response("<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>", { headers: { "content-type": "text/html" } });
    case "null":
      return json(JSON.stringify({ sku, price: null }));
    case "no-price":
      return json(JSON.stringify({ sku }));
    case "three-decimals":
      return json(`{"sku":${JSON.stringify(sku)},"price":${price.toFixed(2)}5}`);
    case "negative":
      return json(JSON.stringify({ sku, price: -5 }));
    case "huge":
      return json(`{"sku":${JSON.stringify(sku)},"price":1e18}`);
    case "other-sku":
      return json(JSON.stringify({ sku: `${sku}-OTHER`, price }));
    case "trickle":
      return streamed(valid, done, { byteMs: TRICKLE_BYTE_MS });
    case "reset":
      return streamed(valid, done, { resetAfter: Math.floor(valid.length / 2) });
  }
}

/** Sends `text` a byte at a time, `byteMs` apart, or resets the connection after `resetAfter` bytes. */
function streamed(text: string, done: () => void, how: { byteMs?: number; resetAfter?: number }): Response {
  const bytes = new TextEncoder().encode(text);
  let sent = 0;
  let finished = false;
  const finish = () => {
    finished = true;
    done();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (finished) return;
      if (how.resetAfter !== undefined) {
        controller.enqueue(bytes.slice(0, how.resetAfter));
        await Bun.sleep(20);
        finish();
        // Erroring the stream with no reason resets the connection (ECONNRESET at the client)
        // without Bun printing an error for it.
        controller.error();
        return;
      }
      if (sent >= bytes.length) {
        finish();
        controller.close();
        return;
      }
      await Bun.sleep(how.byteMs ?? 0);
      if (finished) return;
      controller.enqueue(bytes.slice(sent, sent + 1));
      sent++;
    },
    cancel() {
      finish();
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}
