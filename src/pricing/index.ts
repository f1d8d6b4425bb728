// Async enrichment: the pricing dispatcher over its pure policy.
export { judgeAnswer } from "./answer.ts";
export { PricingDispatcher, type DispatcherOptions } from "./dispatcher.ts";
