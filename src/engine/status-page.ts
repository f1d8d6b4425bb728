// The status page (status-page.html: one self-contained file, no request beyond /status.json).
import { readFileSync } from "node:fs";

export const STATUS_PAGE = readFileSync(new URL("./status-page.html", import.meta.url), "utf8");
