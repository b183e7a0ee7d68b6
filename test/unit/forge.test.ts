/**
 * The forge client's request shapes. GitHub's are validated against an excerpt of GitHub's published OpenAPI
 * description (test/fixtures/forge/github-openapi-excerpt.json, with its source URL); no GitHub or GitLab
 * server runs here. Gitea is tested against a real Gitea in test/git/forge-gitea.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Ajv } from "ajv";
import { finishedStatus, StatusTracker } from "../../agent/forge/commit-status.ts";
import { createForgeClient, type ForgeProvider, locate, type Transport } from "../../agent/forge/forge.ts";
import type { LedgerEntry } from "../../agent/ledger/entry.ts";
import excerpt from "../fixtures/forge/github-openapi-excerpt.json" with { type: "json" };

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

function recorder(answers: (req: Sent) => unknown = () => ({ id: 1 })): {
  sent: Sent[];
  transport: Transport;
} {
  const sent: Sent[] = [];
  return {
    sent,
    transport: async (req) => {
      const s: Sent = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        ...(req.body !== undefined ? { body: JSON.parse(req.body) as unknown } : {}),
      };
      sent.push(s);
      return answers(s);
    },
  };
}

const SHA = "0123456789abcdef0123456789abcdef01234567";

/** The OpenAPI operation a request matches: path template and method. */
function operation(url: string, method: string) {
  const path = new URL(url).pathname;
  for (const [template, ops] of Object.entries(excerpt.paths)) {
    const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    const op = (ops as Record<string, unknown>)[method.toLowerCase()];
    if (re.test(path) && op) return op as { requestBody: { content: Record<string, { schema: object }> } };
  }
  return undefined;
}

describe("GitHub requests match GitHub's OpenAPI description", () => {
  const ajv = new Ajv({ strict: false });

  test("commit status, comment create and comment update", async () => {
    const { sent, transport } = recorder((req) =>
      req.method === "GET" ? [{ id: 77, body: "<!-- berth:preview/web -->\nold" }] : { id: 5 },
    );
    const gh = createForgeClient({
      provider: "github",
      url: "https://github.com/acme/infra",
      token: "t0k",
      transport,
    });
    await gh.setStatus({
      sha: SHA,
      context: "berth/web",
      state: "failure",
      description: `health failed: ${"x".repeat(300)}`,
      targetUrl: "https://berth.example/#app=web",
    });
    await gh.comment({ pr: 12, body: "new", marker: "preview/web" });
    const fresh = recorder(() => ({ id: 9 }));
    const gh2 = createForgeClient({
      provider: "github",
      url: "https://github.com/acme/infra",
      token: "t0k",
      transport: async (req) => (req.method === "GET" ? [] : fresh.transport(req)),
    });
    await gh2.comment({ pr: 12, body: "first", marker: "preview/web" });
    const writes = [...sent.filter((s) => s.method !== "GET"), ...fresh.sent];
    expect(writes.map((s) => `${s.method} ${new URL(s.url).pathname}`)).toEqual([
      `POST /repos/acme/infra/statuses/${SHA}`,
      "PATCH /repos/acme/infra/issues/comments/77",
      "POST /repos/acme/infra/issues/12/comments",
    ]);
    for (const s of writes) {
      expect(new URL(s.url).origin).toBe(excerpt.servers[0]?.url ?? "");
      const op = operation(s.url, s.method);
      expect(op).toBeDefined();
      const schema = op?.requestBody.content["application/json"]?.schema ?? {};
      const ok = ajv.validate(schema, s.body);
      expect(ajv.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
      expect(s.headers.authorization).toBe("Bearer t0k");
      expect(s.headers.accept).toBe("application/vnd.github+json");
      expect(s.headers["x-github-api-version"]).toBe("2022-11-28");
    }
    const status = writes[0]?.body as { description: string; state: string };
    expect(status.description.length).toBeLessThanOrEqual(140);
    expect(status.state).toBe("failure");
    expect((writes[1]?.body as { body?: string } | undefined)?.body).toBe("<!-- berth:preview/web -->\nnew");
  });

  test("a wrong state or a missing body is refused by the same schemas (the check can fail)", () => {
    const op = operation(`https://api.github.com/repos/a/b/statuses/${SHA}`, "POST");
    const schema = op?.requestBody.content["application/json"]?.schema ?? {};
    expect(ajv.validate(schema, { state: "failed" })).toBe(false);
    const comment = operation("https://api.github.com/repos/a/b/issues/1/comments", "POST");
    expect(ajv.validate(comment?.requestBody.content["application/json"]?.schema ?? {}, {})).toBe(false);
  });
});

describe("GitLab and Gitea request shapes", () => {
  test("GitLab: project path encoded, failed for failure, name for context, PRIVATE-TOKEN", async () => {
    const { sent, transport } = recorder((req) =>
      req.method === "GET"
        ? [
            { id: 3, body: "<!-- berth:m -->\nx", system: false },
            { id: 4, body: "<!-- berth:m -->", system: true },
          ]
        : { id: 8 },
    );
    const gl = createForgeClient({
      provider: "gitlab",
      url: "https://gitlab.example/group/sub/infra",
      token: "glpat",
      transport,
    });
    await gl.setStatus({ sha: SHA, context: "berth/web", state: "error", description: "interrupted" });
    await gl.comment({ pr: 4, body: "y", marker: "m" });
    expect(sent.map((s) => `${s.method} ${s.url}`)).toEqual([
      `POST https://gitlab.example/api/v4/projects/group%2Fsub%2Finfra/statuses/${SHA}`,
      "GET https://gitlab.example/api/v4/projects/group%2Fsub%2Finfra/merge_requests/4/notes?per_page=100&page=1",
      "PUT https://gitlab.example/api/v4/projects/group%2Fsub%2Finfra/merge_requests/4/notes/3",
    ]);
    expect(sent[0]?.body).toEqual({ state: "failed", name: "berth/web", description: "interrupted" });
    expect(sent[0]?.headers["private-token"]).toBe("glpat");
  });

  test("pullsForHead keeps open pulls headed by the commit", async () => {
    const pulls = [
      { number: 1, state: "open", title: "a", head: { sha: SHA, ref: "feat" }, base: { ref: "main" } },
      {
        number: 2,
        state: "open",
        title: "b",
        head: { sha: "f".repeat(40), ref: "x" },
        base: { ref: "main" },
      },
      { number: 3, state: "closed", title: "c", head: { sha: SHA, ref: "old" }, base: { ref: "main" } },
    ];
    for (const provider of ["gitea", "github"] as ForgeProvider[]) {
      const { transport } = recorder(() => pulls);
      const c = createForgeClient({
        provider,
        url: "https://forge.example/acme/infra",
        token: "t",
        transport,
      });
      expect((await c.pullsForHead(SHA)).map((p) => [p.number, p.headRef, p.baseRef])).toEqual([
        [1, "feat", "main"],
      ]);
    }
  });
});

describe("locate()", () => {
  test("API bases from repository URLs", () => {
    expect(locate("github", "https://github.com/acme/infra.git")).toEqual({
      api: "https://api.github.com",
      repository: "acme/infra",
    });
    expect(locate("github", "https://ghe.corp/acme/infra")).toEqual({
      api: "https://ghe.corp/api/v3",
      repository: "acme/infra",
    });
    expect(locate("gitea", "http://127.0.0.1:3000/git/acme/infra")).toEqual({
      api: "http://127.0.0.1:3000/git/api/v1",
      repository: "acme/infra",
    });
    expect(locate("gitlab", "https://gitlab.example/g/s/p/-/tree/main").repository).toBe("g/s/p");
  });

  test("a URL without owner/name, or with credentials, is refused naming it", () => {
    expect(() => locate("gitea", "https://gitea.example/acme")).toThrow(/owner\/name/);
    expect(() => locate("github", "https://u:secret@github.com/a/b")).toThrow(/tokenFile/);
    expect(() => locate("github", "https://u:secret@github.com/a/b")).not.toThrow(/secret/);
  });
});

describe("commit status of a sync", () => {
  const entry = (extra: Partial<LedgerEntry>): LedgerEntry =>
    ({
      id: 1,
      app: "web",
      revision: `main@sha1:${SHA}`,
      commitSha: SHA,
      trigger: "interval",
      startedAt: "2026-01-01T00:00:00Z",
      objects: [],
      ...extra,
    }) as LedgerEntry;

  test("success, health failure naming the object, hold as pending, denial", () => {
    expect(finishedStatus(entry({ outcome: "Succeeded", reason: "Succeeded" }), "L")).toMatchObject({
      state: "success",
      context: "berth/web",
      sha: SHA,
    });
    expect(
      finishedStatus(
        entry({ outcome: "Failed", reason: "HealthCheckFailed", message: "Deployment/ns/api: 0/1 ready" }),
        "L",
      ),
    ).toMatchObject({ state: "failure", description: "health failed: Deployment/ns/api: 0/1 ready" });
    expect(
      finishedStatus(
        entry({
          outcome: "Failed",
          reason: "PlanRejected",
          message: "held by rule no-pvc-delete",
          verdicts: [{ verdict: "hold" }] as never,
        }),
        "L",
      ),
    ).toMatchObject({ state: "pending", description: "held: held by rule no-pvc-delete" });
    expect(
      finishedStatus(
        entry({
          outcome: "Failed",
          reason: "PlanRejected",
          message: "no",
          verdicts: [{ verdict: "deny" }] as never,
        }),
        "L",
      ),
    ).toMatchObject({ state: "failure", description: "denied by rule: no" });
  });

  test("a resync of a commit already marked posts nothing; a change of state posts", () => {
    const t = new StatusTracker();
    expect(t.started("web", SHA, "L")?.state).toBe("pending");
    expect(t.finished(entry({ outcome: "Succeeded", reason: "Succeeded" }), "L")?.state).toBe("success");
    expect(t.started("web", SHA, "L")).toBeUndefined();
    expect(t.finished(entry({ outcome: "Succeeded", reason: "Succeeded" }), "L")).toBeUndefined();
    expect(
      t.finished(entry({ outcome: "Failed", reason: "HealthCheckFailed", message: "x" }), "L")?.state,
    ).toBe("failure");
  });
});
