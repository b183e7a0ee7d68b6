/**
 * Runs the driver conformance suite with the driver `openDriver` picks for the current runtime and prints one
 * JSON line. Spawned by test/ledger/driver-conformance.test.ts under Deno, under Node 20 (bundled first: Node
 * 20 cannot run TypeScript) and as a `bun build --compile` binary.
 *   ledger-runtime-check <empty dir>
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { openDriver } from "../../agent/ledger/driver.ts";
import { currentRuntime } from "../../agent/runtime/detect.ts";
import { runConformance } from "./ledger-conformance.ts";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "berth-ledger-check-"));
const probe = await openDriver(join(dir, "probe.db"));
const driver = probe.name;
probe.close();
const results = await runConformance(openDriver, dir);
process.stdout.write(`${JSON.stringify({ runtime: currentRuntime(), driver, results })}\n`);
