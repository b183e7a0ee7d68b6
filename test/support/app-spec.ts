/** App settings for engine tests without a config file. */
import type { AppSpec } from "../../agent/engine/ports.ts";

/** An app named `name` at path `name`: pruning on, 1 s health timeout, no dependencies; `more` overrides. */
export function appSpec(name: string, more: Partial<AppSpec> = {}): AppSpec {
  return {
    name,
    path: name,
    prune: true,
    allowEmpty: false,
    force: false,
    timeout: 1000,
    dependsOn: [],
    suspend: false,
    ...more,
  };
}
