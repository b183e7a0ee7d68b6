/** Build identity; scripts/build.sh replaces the defines when compiling the binary. */
import { runtimeName } from "./runtime/detect.ts";

declare const BERTH_VERSION: string | undefined;
declare const BERTH_COMMIT: string | undefined;

export interface BuildInfo {
  version: string;
  commit: string;
  runtime: string;
}

/** The version, commit and runtime of this build. */
export function buildInfo(): BuildInfo {
  return {
    version: typeof BERTH_VERSION === "string" ? BERTH_VERSION : "0.1.0-dev",
    commit: typeof BERTH_COMMIT === "string" ? BERTH_COMMIT : "unknown",
    runtime: runtimeName(),
  };
}
