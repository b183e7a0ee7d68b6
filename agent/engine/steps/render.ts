/** 2. Render: any render error applies nothing. A generated app whose directory is gone renders nothing. */
import { messageOf } from "../../object/errors.ts";
import { joinMessages } from "../../object/message.ts";
import type { Snapshot } from "../../object/snapshot.ts";
import { type Attempt, type Stop, timed } from "../attempt.ts";
import type { EngineDeps } from "../ports.ts";

/** The digest of an empty desired set (sha256 of nothing). */
const EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Renders the app's path of the snapshot into the attempt's desired objects. */
export async function renderApp(deps: EngineDeps, a: Attempt, snapshot: Snapshot): Promise<Stop | undefined> {
  const { app } = a;
  let rendered: Awaited<ReturnType<EngineDeps["render"]>>;
  try {
    rendered = app.gone
      ? { objects: [], skipped: [], errors: [], digest: EMPTY_DIGEST }
      : await timed(deps, a, "render", () => deps.render(snapshot, app, a.signal));
  } catch (err) {
    if (a.signal?.aborted) return { reason: "Interrupted", message: "stopped while rendering" };
    return { reason: "BuildFailed", message: messageOf(err) };
  }
  for (const s of rendered.skipped)
    deps.log.log("info", "skipped a file", { app: app.name, path: s.path, why: s.message });
  // Every skip is said in the entry (and so in `berth sync` and the API), not only in the log.
  // A remote chart's version and digest come first: replay and the API read them back (chartOfMessage).
  const notes = [rendered.origin, skippedNote(rendered.skipped)].filter((n): n is string => n !== undefined);
  if (notes.length > 0) a.note = notes.join("; ");
  a.digest = rendered.digest;
  if (rendered.errors.length > 0) {
    const message = joinMessages(
      rendered.errors.map((e) => ({ subject: e.path, message: e.message })),
      { noun: "files" },
    );
    return { reason: "BuildFailed", message };
  }
  if (rendered.origin)
    deps.log.log("info", "rendered a remote chart", { app: app.name, chart: rendered.origin });
  a.desired = rendered.objects;
  // Only a render reproducible from the ledger alone: a remote chart's origin is never reused.
  if (rendered.key !== undefined && rendered.origin === undefined)
    a.reusable = { key: rendered.key, skipped: rendered.skipped, files: rendered.files ?? 0 };
  return undefined;
}

/** "skipped N document(s) that are not Kubernetes objects: path (why), …", or undefined when none was. */
export function skippedNote(skipped: ReadonlyArray<{ path: string; message: string }>): string | undefined {
  if (skipped.length === 0) return undefined;
  const shown = skipped.slice(0, 20).map((s) => `${s.path} (${s.message})`);
  const more = skipped.length > 20 ? `, and ${skipped.length - 20} more` : "";
  return `skipped ${skipped.length} document(s) that are not Kubernetes objects: ${shown.join(", ")}${more}`;
}
