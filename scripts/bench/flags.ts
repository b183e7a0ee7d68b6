/** Command-line flags shared by the benchmarks. */

/** The number after `flag` on the command line, or `fallback`. */
export function numberFlag(flag: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
