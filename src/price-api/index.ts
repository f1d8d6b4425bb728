// The mock price API (Hono).
export { FAULT_TABLE_FORMAT, parseFaultTable, type FaultTable } from "./faults.ts";
export { startPriceApi, type RunningPriceApi } from "./server.ts";
