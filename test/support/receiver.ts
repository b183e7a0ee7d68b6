/**
 * A local HTTP receiver standing in for Slack, Microsoft Teams (Workflows) and Discord webhooks, whose servers
 * cannot be reached from here, and for a signed berth webhook. Each path checks its payload against the
 * service's documented shape and limits and answers as the service would (400 with the reason when it
 * would refuse it); every request is recorded with its verdict. stop()/start() take it down and bring it back
 * on the same port, for delivery retries.
 *
 * Shapes checked: Slack incoming webhooks (api.slack.com/messaging/webhooks, Block Kit: section text ≤ 3000,
 * ≤ 50 blocks, context ≤ 10 elements), Teams Workflows "post to a channel when a webhook request is received"
 * (a `message` with Adaptive Card attachments), Discord Execute Webhook (content or embeds; embed title ≤ 256,
 * description ≤ 4096, ≤ 25 fields of name ≤ 256 / value ≤ 1024, ≤ 6000 characters per message, ≤ 10 embeds).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";

export type Kind = "slack" | "msteams" | "discord" | "webhook";

export interface Received {
  kind: Kind;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  /** Problems with the payload; empty when the service would accept it. */
  problems: string[];
}

export interface Receiver {
  /** Base URL; paths: /slack/…, /teams/…, /discord/…, /hook/…. */
  url: string;
  received: Received[];
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number, what: string, out: string[], required = true) => {
  if (v === undefined && !required) return;
  if (typeof v !== "string" || v === "") out.push(`${what}: expected a non-empty string`);
  else if (v.length > max) out.push(`${what}: ${v.length} characters, at most ${max}`);
};

export function checkSlack(b: unknown): string[] {
  const out: string[] = [];
  if (!isObj(b)) return ["body: expected an object"];
  if (b.text === undefined && b.blocks === undefined) out.push("text or blocks is required");
  str(b.text, 40_000, "text", out, b.blocks === undefined);
  if (b.blocks !== undefined) {
    if (!Array.isArray(b.blocks) || b.blocks.length > 50) out.push("blocks: expected an array of at most 50");
    else
      b.blocks.forEach((block: unknown, i) => {
        if (!isObj(block)) {
          out.push(`blocks[${i}]: expected an object`);
          return;
        }
        if (block.type === "section") {
          const t = block.text;
          if (!isObj(t) || (t.type !== "mrkdwn" && t.type !== "plain_text"))
            out.push(`blocks[${i}].text: expected a text object`);
          else str(t.text, 3000, `blocks[${i}].text.text`, out);
        } else if (block.type === "context") {
          const els = block.elements;
          if (!Array.isArray(els) || els.length === 0 || els.length > 10)
            out.push(`blocks[${i}].elements: expected 1 to 10 elements`);
        } else out.push(`blocks[${i}].type: unexpected ${String(block.type)}`);
      });
  }
  return out;
}

export function checkTeams(b: unknown): string[] {
  const out: string[] = [];
  if (!isObj(b) || b.type !== "message") return ['type: expected "message"'];
  if (!Array.isArray(b.attachments) || b.attachments.length === 0)
    return ["attachments: expected a non-empty array"];
  b.attachments.forEach((a: unknown, i) => {
    if (!isObj(a) || a.contentType !== "application/vnd.microsoft.card.adaptive") {
      out.push(`attachments[${i}].contentType: expected application/vnd.microsoft.card.adaptive`);
      return;
    }
    const c = a.content;
    if (!isObj(c) || c.type !== "AdaptiveCard") {
      out.push(`attachments[${i}].content.type: expected AdaptiveCard`);
      return;
    }
    if (typeof c.version !== "string") out.push(`attachments[${i}].content.version: expected a string`);
    if (!Array.isArray(c.body) || c.body.length === 0)
      out.push(`attachments[${i}].content.body: expected elements`);
    else
      c.body.forEach((el: unknown, j) => {
        if (!isObj(el) || typeof el.type !== "string")
          out.push(`attachments[${i}].content.body[${j}]: no type`);
        else if (el.type === "TextBlock") str(el.text, 1 << 20, `body[${j}].text`, out);
        else if (el.type === "FactSet" && !Array.isArray(el.facts))
          out.push(`body[${j}].facts: expected an array`);
      });
  });
  return out;
}

export function checkDiscord(b: unknown): string[] {
  const out: string[] = [];
  if (!isObj(b)) return ["body: expected an object"];
  if (b.content === undefined && b.embeds === undefined) out.push("content or embeds is required");
  str(b.content, 2000, "content", out, false);
  if (b.embeds !== undefined) {
    if (!Array.isArray(b.embeds) || b.embeds.length > 10) return [...out, "embeds: at most 10"];
    let total = 0;
    b.embeds.forEach((e: unknown, i) => {
      if (!isObj(e)) {
        out.push(`embeds[${i}]: expected an object`);
        return;
      }
      str(e.title, 256, `embeds[${i}].title`, out, false);
      str(e.description, 4096, `embeds[${i}].description`, out, false);
      total += String(e.title ?? "").length + String(e.description ?? "").length;
      if (
        e.color !== undefined &&
        (!Number.isInteger(e.color) || (e.color as number) < 0 || (e.color as number) > 0xffffff)
      )
        out.push(`embeds[${i}].color: expected an integer colour`);
      if (e.timestamp !== undefined && Number.isNaN(Date.parse(String(e.timestamp))))
        out.push(`embeds[${i}].timestamp: expected ISO 8601`);
      const fields = e.fields;
      if (fields !== undefined) {
        if (!Array.isArray(fields) || fields.length > 25) out.push(`embeds[${i}].fields: at most 25`);
        else
          fields.forEach((f: unknown, j) => {
            if (!isObj(f)) {
              out.push(`embeds[${i}].fields[${j}]: expected an object`);
              return;
            }
            str(f.name, 256, `embeds[${i}].fields[${j}].name`, out);
            str(f.value, 1024, `embeds[${i}].fields[${j}].value`, out);
            total += String(f.name ?? "").length + String(f.value ?? "").length;
          });
      }
    });
    if (total > 6000) out.push(`embeds: ${total} characters in all, at most 6000`);
  }
  return out;
}

/** The signature berth's own generic hook accepts: sha256 HMAC over "<timestamp>.<body>". */
export function checkSignature(headers: Record<string, string>, raw: string, secret: string): string[] {
  const ts = headers["x-berth-timestamp"];
  const sig = headers["x-berth-signature"];
  if (!ts || !sig) return ["X-Berth-Timestamp and X-Berth-Signature are required"];
  const want = `sha256=${createHmac("sha256", secret).update(`${ts}.${raw}`).digest("hex")}`;
  const a = Buffer.from(sig);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b) ? [] : ["X-Berth-Signature does not match"];
}

export async function startReceiver(options: { webhookSecret?: string } = {}): Promise<Receiver> {
  const received: Received[] = [];
  let port = 0;
  let server: Server | undefined;
  const start = async () => {
    server = createServer((req, res) => {
      let raw = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => {
        raw += c;
      });
      req.on("end", () => {
        const path = req.url ?? "/";
        const kind: Kind | undefined = path.startsWith("/slack/")
          ? "slack"
          : path.startsWith("/teams/")
            ? "msteams"
            : path.startsWith("/discord/")
              ? "discord"
              : path.startsWith("/hook/")
                ? "webhook"
                : undefined;
        const headers = Object.fromEntries(
          Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
        );
        let body: unknown;
        const problems: string[] = [];
        if (req.method !== "POST") problems.push(`method ${req.method}, expected POST`);
        if (!String(headers["content-type"]).startsWith("application/json"))
          problems.push("content-type: expected application/json");
        try {
          body = JSON.parse(raw);
        } catch {
          problems.push("body: not JSON");
        }
        if (!kind) {
          res.writeHead(404).end("no such hook");
          return;
        }
        if (body !== undefined) {
          if (kind === "slack") problems.push(...checkSlack(body));
          if (kind === "msteams") problems.push(...checkTeams(body));
          if (kind === "discord") problems.push(...checkDiscord(body));
          if (kind === "webhook") problems.push(...checkSignature(headers, raw, options.webhookSecret ?? ""));
        }
        received.push({ kind, path, headers, body, problems });
        if (problems.length > 0) res.writeHead(400).end(problems.join("; "));
        else
          res
            .writeHead(kind === "msteams" ? 202 : kind === "discord" ? 204 : 200)
            .end(kind === "slack" ? "ok" : "");
      });
    });
    await new Promise<void>((r) => server?.listen(port, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  };
  await start();
  return { url: `http://127.0.0.1:${port}`, received, start, stop, close: stop };
}
