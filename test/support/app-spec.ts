/** App settings for engine tests without a config file. */
import type { AppSpec } from "../../agent/engine/ports.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";

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

/** A snapshot of commit `sha` on main with no files. */
export const snapshotAt = (sha: string): Snapshot => ({
  revision: `main@sha1:${sha}`,
  commit: { sha, author: "T <t@example.test>", message: "m", time: "2026-11-01T00:00:00Z" },
  readDir: async () => [],
  readBlob: async () => new Uint8Array(),
  stat: async () => undefined,
});
