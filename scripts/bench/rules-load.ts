/**
 * Start-up cost of the built-in rule packs: each run is a fresh process (so the code is as cold as in a
 * one-shot `berth sync`) that warms the YAML parser on a small document, as the config load does first, then
 * times loading the five packs: as berth does (embedded parsed, each expression compiled on first use:
 * compileEmbeddedPack lazy), embedded parsed and compiled at once (what start-up did before that), or by parsing
 * their YAML (parseRuleFile, before they were embedded parsed). CEL compiling is in the last two.
 * Prints the median and range of `--runs` (default 7) per way, with the load average.
 * Run: bun scripts/bench/rules-load.ts [--runs 7]
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { figurePrinter, median, numberFlag } from "./flags.ts";
import { loadavg1 } from "./harness.ts";

const print = figurePrinter("rules-load");
const RUNS = numberFlag("--runs", 7);
const ROOT = join(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules/.bin/bun");

/** One fresh process's load of the packs, ms. */
type Way = "lazy" | "embedded" | "yaml";

function once(way: Way): number {
  const script = `
    import { readdirSync, readFileSync } from "node:fs";
    import { parse } from "yaml";
    parse("apiVersion: v1\\nitems: [a, b]\\n");
    const { parseRuleFile, compileEmbeddedPack } = await import("./agent/policy/rule-file.ts");
    const { BUILTIN_PACKS } = await import("./agent/policy/builtin-packs.ts");
    const texts = readdirSync("rules/health").map((f) => [f, readFileSync("rules/health/" + f, "utf8")]);
    const t = performance.now();
    if (${JSON.stringify(way)} === "yaml") for (const [f, text] of texts) parseRuleFile(text, f, true);
    else for (const [f, pack] of Object.entries(BUILTIN_PACKS)) compileEmbeddedPack(pack, f, { lazy: ${JSON.stringify(way)} === "lazy" });
    console.log(performance.now() - t);`;
  return Number(execFileSync(BUN, ["-e", script], { cwd: ROOT, encoding: "utf8" }).trim());
}

const times: Record<Way, number[]> = { lazy: [], embedded: [], yaml: [] };
const loads: number[] = [];
for (let r = 0; r < RUNS; r++) {
  loads.push(loadavg1());
  // Interleaved, so a change in the machine's load falls on both ways alike.
  times.lazy.push(once("lazy"));
  times.embedded.push(once("embedded"));
  times.yaml.push(once("yaml"));
}
for (const way of ["lazy", "embedded", "yaml"] as const) {
  print(`load_builtin_packs_${way}_median_ms`, median(times[way]), "ms");
  print(`load_builtin_packs_${way}_min_ms`, Math.min(...times[way]), "ms");
  print(`load_builtin_packs_${way}_max_ms`, Math.max(...times[way]), "ms");
}
console.log(JSON.stringify({ bench: "rules-load", metric: "load1_during_runs", values: loads }));
