/** What the benchmarks share: command-line flags, one JSON line per figure, the median of several runs. */
import { execSync } from "node:child_process";

/** The number after `flag` on the command line, or `fallback`. */
export function numberFlag(flag: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A printer of one JSON line per figure of `bench`, tagged with the runtime and the commit measured. */
export function figurePrinter(bench: string): (metric: string, value: number, unit: string) => void {
  const commit = execSync("git rev-parse --short HEAD").toString().trim();
  return (metric, value, unit) =>
    console.log(
      JSON.stringify({ bench, metric, value: Math.round(value * 10) / 10, unit, runtime: "bun", commit }),
    );
}

/** The middle value (the upper middle of an even count); 0 for none. */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
