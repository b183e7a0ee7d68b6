/**
 * Each receiver type's request body, written from one event: Slack incoming webhooks (text + Block Kit),
 * Microsoft Teams Workflows webhooks (an Adaptive Card attachment), Discord webhooks (an embed), berth's
 * own signed JSON, and Alertmanager's v2 API (`POST /api/v2/alerts`). Field limits are each service's
 * documented ones, so a long failure message is cut, never refused.
 */
import { createHmac } from "node:crypto";
import type { ReceiverType } from "../config/notify.ts";
import type { NotifyEvent, Severity } from "./event.ts";

/** One HTTP request to send. */
export interface OutgoingRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

/** What a delivery needs besides the event: the resolved URL and secret, and the outbox row's identity. */
export interface Target {
  type: ReceiverType;
  url: string;
  secret?: string;
  /** Stable across retries, so a receiver can drop a repeat (X-Berth-Delivery). */
  deliveryId: string;
  /** Alertmanager: when a firing alert lapses if berth is not there to renew or resolve it (ms). */
  alertTtlMs: number;
}

const EMOJI: Record<Severity, string> = { error: "🔴", warning: "🟠", info: "🟢" };
const COLOUR: Record<Severity, number> = { error: 0xd93025, warning: 0xf29900, info: 0x1e8e3e };

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function shortSha(e: NotifyEvent): string {
  return e.commit.sha ? e.commit.sha.slice(0, 12) : (e.revision.split(":").pop() ?? "").slice(0, 12);
}

/** Facts every message lists: app, revision, commit subject, what happened. */
function facts(e: NotifyEvent): Array<[string, string]> {
  if (!e.app) return [["Event", e.reason]]; // about the agent (its Git source), not one app
  const out: Array<[string, string]> = [
    ["App", e.app],
    ["Revision", e.revision || "unknown"],
  ];
  if (e.commit.subject) out.push(["Commit", `${shortSha(e)} ${e.commit.subject}`]);
  out.push(["Event", e.reason]);
  if (e.entry !== undefined) out.push(["Ledger entry", String(e.entry)]);
  return out;
}

/** The body of each type, and its headers. */
export function requestFor(t: Target, e: NotifyEvent, now = Date.now()): OutgoingRequest {
  switch (t.type) {
    case "slack":
      return json(t.url, slack(e));
    case "msteams":
      return json(t.url, teams(e));
    case "discord":
      return json(t.url, discord(e));
    case "alertmanager":
      return {
        url: `${t.url.replace(/\/+$/, "")}/api/v2/alerts`,
        body: JSON.stringify(alertmanager(e, t.alertTtlMs, now)),
        headers: t.secret ? { authorization: `Bearer ${t.secret}` } : {},
      };
    case "webhook": {
      const body = JSON.stringify({ apiVersion: "berth.dev/v1alpha1", kind: "Notification", event: e });
      const ts = String(Math.floor(now / 1000));
      // The scheme berth's own generic hook accepts (agent/api/webhooks.ts): sha256 HMAC over "<ts>.<body>".
      const sig = createHmac("sha256", t.secret ?? "")
        .update(`${ts}.`)
        .update(body)
        .digest("hex");
      return {
        url: t.url,
        body,
        headers: {
          "x-berth-timestamp": ts,
          "x-berth-signature": `sha256=${sig}`,
          "x-berth-delivery": t.deliveryId,
          "x-berth-event": e.reason,
        },
      };
    }
  }
}

function json(url: string, value: unknown): OutgoingRequest {
  return { url, body: JSON.stringify(value), headers: {} };
}

/** Slack incoming webhook: `text` (the notification fallback) and Block Kit blocks (section text ≤ 3000). */
export function slack(e: NotifyEvent): unknown {
  const title = `${EMOJI[e.severity]} *${e.summary}*`;
  // Slack's mrkdwn reads <…> as links and mentions: escape &, < and > as its docs say.
  const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const lines = facts(e).map(([k, v]) => `*${k}:* ${esc(v)}`);
  return {
    text: cut(`${e.summary} (${e.revision || "unknown revision"})`, 3000),
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: cut(`${title}\n${lines.join("\n")}`, 3000) } },
      ...(e.message
        ? [{ type: "section", text: { type: "mrkdwn", text: `\`\`\`${cut(esc(e.message), 2990)}\`\`\`` } }]
        : []),
      { type: "context", elements: [{ type: "mrkdwn", text: cut(`<${e.link}|Status page>`, 3000) }] },
    ],
  };
}

/** Teams Workflows "post to a channel when a webhook request is received": a message with an Adaptive Card. */
export function teams(e: NotifyEvent): unknown {
  return {
    type: "message",
    attachments: [
      {
        contentType: "application/vnd.microsoft.card.adaptive",
        contentUrl: null,
        content: {
          $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
          type: "AdaptiveCard",
          version: "1.4",
          body: [
            {
              type: "TextBlock",
              text: e.summary,
              weight: "Bolder",
              size: "Medium",
              wrap: true,
              color: e.severity === "error" ? "Attention" : e.severity === "warning" ? "Warning" : "Good",
            },
            { type: "FactSet", facts: facts(e).map(([title, value]) => ({ title, value })) },
            ...(e.message ? [{ type: "TextBlock", text: cut(e.message, 4000), wrap: true }] : []),
          ],
          actions: [{ type: "Action.OpenUrl", title: "Status page", url: e.link }],
        },
      },
    ],
  };
}

/** Discord webhook: one embed (title ≤ 256, description ≤ 4096, ≤ 25 fields of ≤ 1024), no mentions. */
export function discord(e: NotifyEvent): unknown {
  return {
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: cut(e.summary, 256),
        url: e.link,
        description: cut(e.message || e.summary, 4000),
        color: COLOUR[e.severity],
        timestamp: e.at,
        fields: facts(e).map(([name, value]) => ({ name, value: cut(value, 1024), inline: true })),
      },
    ],
  };
}

/**
 * Alertmanager v2 postableAlerts. A failure is one alert per app (`alertname: BerthAppFailing`), renewed by
 * reminders and resolved by the recovery (endsAt = now); drift is one alert per object that lapses by itself.
 */
export function alertmanager(e: NotifyEvent, ttlMs: number, now: number): unknown[] {
  const recovered = e.reason.endsWith("Recovered");
  const drift = e.reason.startsWith("Drift");
  const source = e.reason.startsWith("Source");
  const labels: Record<string, string> = {
    alertname: drift ? "BerthDrift" : source ? "BerthSourceUnreachable" : "BerthAppFailing",
    app: e.app,
    ...(drift ? { object: e.objects[0]?.subject ?? "" } : {}),
    // One alert per source: each outage starts, and resolves, on its own.
    ...(source && e.source ? { source: e.source.name } : {}),
  };
  // The label set is the alert's identity: severity varies with the reason, so it is an annotation.
  const annotations: Record<string, string> = {
    severity: e.severity,
    summary: e.summary,
    description: cut(e.message, 4000),
    reason: e.reason,
    revision: e.revision,
    commit: e.commit.subject ? `${shortSha(e)} ${e.commit.subject}` : shortSha(e),
  };
  return [
    {
      labels,
      annotations,
      startsAt: e.since,
      endsAt: recovered ? new Date(now).toISOString() : new Date(now + ttlMs).toISOString(),
      generatorURL: e.link,
    },
  ];
}
