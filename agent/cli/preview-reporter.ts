/**
 * Previews told to the forge: a commit status `berth/preview/<app>` on the previewed head for each app, and
 * (when asked) one comment on the pull request listing the changes, edited in place on each new head.
 *
 * Both go through the notification outbox (agent/notify/notifier.ts), as the sync statuses do
 * (agent/forge/commit-status.ts): reporting only writes outbox rows, so a forge that is down or slow never
 * stalls the previews lane; the outbox retries with backoff, survives restarts, and a newer status or comment
 * for the same head or ref replaces an undelivered older one.
 */
import type { AppPreview, PreviewReporter, RefPreview } from "../engine/ports.ts";
import { statusPayload } from "../forge/commit-status.ts";
import type { CommitStatus, ForgeClient, StatusState } from "../forge/forge.ts";
import type { Outlet, OutletPayload } from "../notify/notifier.ts";

/** Objects listed per app in a comment; the rest are counted. */
const COMMENT_OBJECTS = 50;

/** The status a preview's outcome sets: a sync that would not apply is a failure. */
export function previewState(outcome: AppPreview["outcome"]): StatusState {
  return outcome === "denied" || outcome === "held" || outcome === "error" ? "failure" : "success";
}

/**
 * The comment's marker: it names the previewed apps, so two agents previewing different apps of one
 * repository each keep their own comment instead of overwriting each other's.
 */
export function commentMarker(apps: readonly string[]): string {
  return `preview:${[...apps].sort().join(",")}`;
}

/** What the comment outlet is handed: the pull request, or (for a branch) the head to find them by. */
interface CommentPayload extends OutletPayload {
  sha: string;
  pr?: number;
  body: string;
  marker: string;
}

/** The outlet that delivers preview comments to the forge. */
export function commentOutlet(forge: ForgeClient): Outlet {
  return {
    name: `comment:${forge.provider}`,
    rateLimit: 30,
    send: async (payload) => {
      const c = payload as CommentPayload;
      // A branch preview has no number in its name: the forge knows which open pull requests it heads.
      const prs = c.pr !== undefined ? [c.pr] : (await forge.pullsForHead(c.sha)).map((p) => p.number);
      for (const pr of prs) await forge.comment({ pr, body: c.body, marker: c.marker });
    },
  };
}

/**
 * The reporter that queues a preview's statuses (on outlet `statusOutlet`) and comment (on `commentOutlet`,
 * when given) in the outbox; `post` is the notifier's. `link` is where people see the preview.
 */
export function outboxPreviewReporter(
  post: (outlet: string, payload: OutletPayload) => void,
  options: { statusOutlet: string; commentOutlet?: string; link?: string },
): PreviewReporter {
  return {
    name: options.statusOutlet,
    async report(preview: RefPreview) {
      for (const app of preview.apps) {
        const status: CommitStatus = {
          sha: preview.sha,
          context: `berth/preview/${app.app}`,
          state: previewState(app.outcome),
          description: app.summary,
          ...(options.link ? { targetUrl: options.link } : {}),
        };
        post(options.statusOutlet, statusPayload(app.app, status));
      }
      if (!options.commentOutlet) return;
      const apps = preview.apps.map((a) => a.app);
      const marker = commentMarker(apps);
      const comment: CommentPayload = {
        app: apps.join(","),
        reason: "preview comment",
        key: `${preview.ref}|${marker}`,
        sha: preview.sha,
        ...(preview.pr !== undefined ? { pr: preview.pr } : {}),
        body: previewComment(preview, options.link),
        marker,
      };
      post(options.commentOutlet, comment);
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
