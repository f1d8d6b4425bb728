// Process warnings the project knows to be harmless. kafkajs's request queue arms
// `setTimeout(check, throttledUntil - Date.now())` with throttledUntil = -1 when nothing is
// throttled (node_modules/kafkajs/src/network/requestQueue/index.js, scheduleCheckPendingRequests),
// and Bun reports the negative delay as a TimeoutNegativeWarning with a stack hint: a healthy
// run would look broken. Only that warning is dropped; every other one prints as before.

const SILENCED = new Set(["TimeoutNegativeWarning"]);
let installed = false;

/** Idempotent; call before kafkajs runs. */
export function silenceTimeoutNegativeWarning(): void {
  if (installed) return;
  installed = true;
  // Bun (like Node) prints warnings from a default 'warning' listener: wrap that listener.
  const defaults = process.listeners("warning");
  for (const listener of defaults) process.removeListener("warning", listener);
  process.on("warning", (warning: Error) => {
    if (SILENCED.has(warning.name)) return;
    for (const listener of defaults) listener(warning);
  });
}
