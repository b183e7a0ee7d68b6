/** Build identity; scripts/build.sh replaces the defines when compiling the binary. */
declare const BERTH_VERSION: string | undefined;
declare const BERTH_COMMIT: string | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  runtime: string;
}

/** Which JavaScript runtime runs this process, named as `bun`, `deno` or `node` plus its version. */
export function runtimeName(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  return `node ${process.versions.node}`;
}

/** The version, commit and runtime of this build. */
export function buildInfo(): BuildInfo {
  return {
    version: typeof BERTH_VERSION === "string" ? BERTH_VERSION : "0.1.0-dev",
    commit: typeof BERTH_COMMIT === "string" ? BERTH_COMMIT : "unknown",
    runtime: runtimeName(),
  };
}
