/**
 * Previews told to the forge: a commit status `berth/preview/<app>` on the previewed head for each app, and
 * (when asked) one comment on the pull request listing the changes, edited in place on each new head.
 */
import type { AppPreview, PreviewReporter, RefPreview } from "../engine/ports.ts";
import type { ForgeClient, StatusState } from "../forge/forge.ts";

/** Objects listed per app in a comment; the rest are counted. */
const COMMENT_OBJECTS = 50;

/** The status a preview's outcome sets: a sync that would not apply is a failure. */
export function previewState(outcome: AppPreview["outcome"]): StatusState {
  return outcome === "denied" || outcome === "held" || outcome === "error" ? "failure" : "success";
}

/** The reporter over a forge client; `link` is where people see the preview (the status page). */
export function forgePreviewReporter(
  forge: ForgeClient,
  options: { comment: boolean; link?: string },
): PreviewReporter {
  return {
    name: `forge ${forge.provider}`,
    async report(preview: RefPreview) {
      for (const app of preview.apps)
        await forge.setStatus({
          sha: preview.sha,
          context: `berth/preview/${app.app}`,
          state: previewState(app.outcome),
          description: app.summary,
          ...(options.link ? { targetUrl: options.link } : {}),
        });
      if (!options.comment) return;
      // A branch preview has no number in its name: the forge knows which open pull requests it heads.
      const prs =
        preview.pr !== undefined
          ? [preview.pr]
          : (await forge.pullsForHead(preview.sha)).map((p) => p.number);
      for (const pr of prs)
        await forge.comment({ pr, body: previewComment(preview, options.link), marker: "preview" });
    },
  };
}

const ICON: Record<AppPreview["outcome"], string> = {
  clean: "✅",
  changes: "✅",
  deferred: "⏸️",
  held: "✋",
  denied: "⛔",
  error: "❌",
};

/** The comment's Markdown: one row per app, then each app's objects, verdicts and errors. */
export function previewComment(preview: RefPreview, link?: string): string {
  const code = (s: string) => `\`${s.replaceAll("`", "'")}\``;
  const cell = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");
  const lines = [
    `### berth preview of ${code(preview.ref)} at ${code(preview.sha.slice(0, 12))}`,
    "",
    "What a sync of this head would do, planned against the live cluster with server-side dry-run (nothing was written).",
    "",
    "| app | would | result |",
    "| --- | --- | --- |",
    ...preview.apps.map((a) => `| ${cell(a.app)} | ${ICON[a.outcome]} ${a.outcome} | ${cell(a.summary)} |`),
  ];
  for (const a of preview.apps) {
    const changes = a.objects.filter((o) => o.action !== "unchanged");
    if (changes.length === 0 && a.verdicts.length === 0 && a.errors.length === 0) continue;
    lines.push("", `#### ${a.app}`, "");
    for (const e of a.errors) lines.push(`- ❌ ${code(e.subject)}: ${cell(e.message)}`);
    for (const o of changes.slice(0, COMMENT_OBJECTS))
      lines.push(`- ${o.action} ${code(o.subject)}${o.note ? ` — ${cell(o.note)}` : ""}`);
    if (changes.length > COMMENT_OBJECTS) lines.push(`- … and ${changes.length - COMMENT_OBJECTS} more`);
    for (const v of a.verdicts)
      lines.push(
        `- rule ${code(v.rule)} (${v.at}): **${v.verdict}**${v.subject ? ` ${code(v.subject)}` : ""} — ${cell(v.message)}`,
      );
  }
  if (link) lines.push("", `[berth status page](${link})`);
  return lines.join("\n");
}
