/**
 * The forge client: commit statuses, pull-request comments and the pull requests of a head commit, on Gitea,
 * GitHub and GitLab. One code path; each provider is a dialect that says where a request goes and what its
 * JSON looks like (their API descriptions: Gitea's swagger, GitHub's and GitLab's OpenAPI). HTTP goes through
 * agent/notify/http.ts (timeouts, quick retries); longer outages are the outbox's business.
 * The token is a header value only: it is never part of a URL, an error or a log line.
 */
import { DeliveryError, requestJson } from "../notify/http.ts";
import { BerthError } from "../object/errors.ts";

export type ForgeProvider = "gitea" | "github" | "gitlab";

/** berth's states; GitLab calls failure and error both `failed`. */
export type StatusState = "pending" | "success" | "failure" | "error";

/** One commit status (`context` is its name: `berth/<app>`, `berth/preview/<app>`). */
export interface CommitStatus {
  sha: string;
  context: string;
  state: StatusState;
  /** Cut to 140 characters (GitHub's limit; the shortest of the three). */
  description: string;
  targetUrl?: string;
}

/** A pull (merge) request whose head is a commit. */
export interface PullRequest {
  /** GitHub/Gitea number, GitLab iid: what `comment({ pr })` takes. */
  number: number;
  title: string;
  headSha: string;
  headRef: string;
  baseRef: string;
  url: string;
}

/** What berth asks of a forge. */
export interface ForgeClient {
  readonly provider: ForgeProvider;
  /** The repository, as `owner/name` (GitLab: the project path). */
  readonly repository: string;
  /** Sets (creates or replaces) the status `context` on `sha`. */
  setStatus(status: CommitStatus): Promise<void>;
  /**
   * Creates the comment on pull request `pr`, or edits the one already carrying `marker` (a hidden
   * `<!-- berth:<marker> -->` line), so re-runs edit instead of adding comments.
   */
  comment(input: { pr: number; body: string; marker: string }): Promise<{ id: number; created: boolean }>;
  /** Open pull requests whose head is `sha`. */
  pullsForHead(sha: string): Promise<PullRequest[]>;
}

/** One request as a dialect describes it: method, path under the API base, JSON body. */
export interface ForgeRequest {
  method: "GET" | "POST" | "PATCH" | "PUT";
  path: string;
  body?: Record<string, unknown>;
}

/** Sends a request to the forge; the default goes through agent/notify/http.ts. */
export type Transport = (req: {
  method: ForgeRequest["method"];
  url: string;
  headers: Record<string, string>;
  body?: string;
}) => Promise<unknown>;

export interface ForgeOptions {
  provider: ForgeProvider;
  /** The repository's web URL, e.g. https://gitea.example/org/repo or https://github.com/org/repo. */
  url: string;
  token: string;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  transport?: Transport;
}

/** Where the API of a repository is, from its web URL. */
export interface RepoLocation {
  /** API base URL, without a trailing slash. */
  api: string;
  /** owner/name, or the GitLab project path (groups/…/project). */
  repository: string;
}

/** Comments and pulls are paged; this bounds a listing (100 pages of 50–100). */
const MAX_PAGES = 100;
const DESCRIPTION_MAX = 140;

/** Finds a repository's API from its web URL; throws BerthError naming the URL. */
export function locate(provider: ForgeProvider, webUrl: string): RepoLocation {
  let u: URL;
  try {
    u = new URL(webUrl);
  } catch {
    throw new BerthError("not a URL", { subject: JSON.stringify(webUrl) });
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new BerthError("expected an http or https URL", { subject: webUrl });
  if (u.username || u.password)
    throw new BerthError("the URL must not carry credentials; use tokenFile", { subject: u.origin });
  const segments = u.pathname
    .replace(/\.git$/, "")
    .split("/")
    .filter((s) => s !== "");
  if (segments.length < 2)
    throw new BerthError(`expected the repository's URL (…/owner/name), got the path "${u.pathname}"`, {
      subject: webUrl,
    });
  if (provider === "gitlab") {
    // GitLab: instance root, then the project path (groups may nest); "/-/" starts a sub-page.
    const dash = segments.indexOf("-");
    const path = dash === -1 ? segments : segments.slice(0, dash);
    return { api: `${u.origin}/api/v4`, repository: path.join("/") };
  }
  const [owner, name] = segments.slice(-2) as [string, string];
  const prefix = segments.slice(0, -2).join("/");
  const root = `${u.origin}${prefix ? `/${prefix}` : ""}`;
  if (provider === "github")
    return {
      api: u.hostname === "github.com" ? "https://api.github.com" : `${root}/api/v3`,
      repository: `${owner}/${name}`,
    };
  return { api: `${root}/api/v1`, repository: `${owner}/${name}` };
}

/** The hidden line that marks berth's comment. */
export function markerLine(marker: string): string {
  return `<!-- berth:${marker.replace(/--+/g, "-")} -->`;
}

/** A provider's requests and answers. */
export interface Dialect {
  headers(token: string): Record<string, string>;
  setStatus(repo: string, s: CommitStatus): ForgeRequest;
  listComments(repo: string, pr: number, page: number): ForgeRequest;
  createComment(repo: string, pr: number, body: string): ForgeRequest;
  updateComment(repo: string, pr: number, id: number, body: string): ForgeRequest;
  pullsForHead(repo: string, sha: string, page: number): ForgeRequest;
  /** Page size the listing requests ask for (a shorter page is the last). */
  pageSize: number;
  comments(json: unknown): Array<{ id: number; body: string }>;
  pulls(json: unknown, sha: string): PullRequest[];
}

const enc = encodeURIComponent;
const ownerRepo = (repo: string) => repo.split("/").map(enc).join("/");
type Json = Record<string, unknown>;
const list = (json: unknown): Json[] => (Array.isArray(json) ? (json as Json[]) : []);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" ? v : 0);

/** Requests Gitea and GitHub share (Gitea's API follows GitHub's for statuses and issue comments). */
const githubShaped: Pick<Dialect, "setStatus" | "createComment" | "updateComment" | "comments"> = {
  setStatus: (repo, s) => ({
    method: "POST",
    path: `/repos/${ownerRepo(repo)}/statuses/${enc(s.sha)}`,
    body: {
      state: s.state,
      context: s.context,
      description: s.description,
      ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
    },
  }),
  createComment: (repo, pr, body) => ({
    method: "POST",
    path: `/repos/${ownerRepo(repo)}/issues/${pr}/comments`,
    body: { body },
  }),
  updateComment: (repo, _pr, id, body) => ({
    method: "PATCH",
    path: `/repos/${ownerRepo(repo)}/issues/comments/${id}`,
    body: { body },
  }),
  comments: (json) => list(json).map((c) => ({ id: num(c.id), body: str(c.body) })),
};

/** Gitea API v1 (its swagger: /api/swagger). */
const gitea: Dialect = {
  ...githubShaped,
  pageSize: 50,
  headers: (token) => ({ authorization: `token ${token}`, accept: "application/json" }),
  listComments: (repo, pr, page) => ({
    method: "GET",
    path: `/repos/${ownerRepo(repo)}/issues/${pr}/comments?page=${page}&limit=50`,
  }),
  // Gitea has no "pulls of a commit" endpoint for heads: list the open ones and match the head.
  pullsForHead: (repo, _sha, page) => ({
    method: "GET",
    path: `/repos/${ownerRepo(repo)}/pulls?state=open&page=${page}&limit=50`,
  }),
  pulls: (json, sha) => githubLikePulls(list(json)).filter((p) => p.headSha === sha),
};

/** GitHub REST API (api.github.com, or GitHub Enterprise Server's /api/v3). */
const github: Dialect = {
  ...githubShaped,
  pageSize: 100,
  headers: (token) => ({
    authorization: `Bearer ${token}`,
    accept: "application/vnd.github+json",
    "x-github-api-version": "2022-11-28",
    "user-agent": "berth",
  }),
  listComments: (repo, pr, page) => ({
    method: "GET",
    path: `/repos/${ownerRepo(repo)}/issues/${pr}/comments?per_page=100&page=${page}`,
  }),
  pullsForHead: (repo, sha, page) => ({
    method: "GET",
    path: `/repos/${ownerRepo(repo)}/commits/${enc(sha)}/pulls?per_page=100&page=${page}`,
  }),
  // The endpoint also lists pulls that merely contain the commit: keep those it heads.
  pulls: (json, sha) => githubLikePulls(list(json)).filter((p) => p.headSha === sha && p.number > 0),
};

function githubLikePulls(items: Json[]): PullRequest[] {
  return items
    .filter((p) => p.state === undefined || p.state === "open")
    .map((p) => {
      const head = (p.head ?? {}) as Json;
      const base = (p.base ?? {}) as Json;
      return {
        number: num(p.number),
        title: str(p.title),
        headSha: str(head.sha),
        headRef: str(head.ref),
        baseRef: str(base.ref),
        url: str(p.html_url),
      };
    });
}

/** GitLab REST API v4 (projects by URL-encoded path). */
const gitlab: Dialect = {
  pageSize: 100,
  headers: (token) => ({ "private-token": token, accept: "application/json" }),
  setStatus: (repo, s) => ({
    method: "POST",
    path: `/projects/${enc(repo)}/statuses/${enc(s.sha)}`,
    body: {
      state: s.state === "failure" || s.state === "error" ? "failed" : s.state,
      name: s.context,
      description: s.description,
      ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
    },
  }),
  listComments: (repo, pr, page) => ({
    method: "GET",
    path: `/projects/${enc(repo)}/merge_requests/${pr}/notes?per_page=100&page=${page}`,
  }),
  createComment: (repo, pr, body) => ({
    method: "POST",
    path: `/projects/${enc(repo)}/merge_requests/${pr}/notes`,
    body: { body },
  }),
  updateComment: (repo, pr, id, body) => ({
    method: "PUT",
    path: `/projects/${enc(repo)}/merge_requests/${pr}/notes/${id}`,
    body: { body },
  }),
  pullsForHead: (repo, sha, page) => ({
    method: "GET",
    path: `/projects/${enc(repo)}/repository/commits/${enc(sha)}/merge_requests?per_page=100&page=${page}`,
  }),
  comments: (json) =>
    list(json)
      .filter((n) => n.system !== true)
      .map((n) => ({ id: num(n.id), body: str(n.body) })),
  pulls: (json, sha) =>
    list(json)
      .filter((m) => m.state === "opened" && m.sha === sha)
      .map((m) => ({
        number: num(m.iid),
        title: str(m.title),
        headSha: str(m.sha),
        headRef: str(m.source_branch),
        baseRef: str(m.target_branch),
        url: str(m.web_url),
      })),
};

export const DIALECTS: Record<ForgeProvider, Dialect> = { gitea, github, gitlab };

/** The default transport: agent/notify/http.ts. A comment is created without quick retries (not idempotent). */
function httpTransport(timeoutMs: number): Transport {
  return (req) =>
    requestJson(req.method, req.url, req.body, {
      headers: req.headers,
      timeoutMs,
      showPath: true,
      ...(req.method === "POST" && req.url.includes("/comments") ? { retries: 0 } : {}),
      ...(req.method === "POST" && req.url.includes("/notes") ? { retries: 0 } : {}),
    });
}

/** Builds the client of one repository. */
export function createForgeClient(options: ForgeOptions): ForgeClient {
  const where = locate(options.provider, options.url);
  const dialect = DIALECTS[options.provider];
  const headers = dialect.headers(options.token);
  const transport = options.transport ?? httpTransport(options.timeoutMs ?? 10_000);
  const send = (r: ForgeRequest) =>
    transport({
      method: r.method,
      url: `${where.api}${r.path}`,
      headers,
      ...(r.body ? { body: JSON.stringify(r.body) } : {}),
    });
  const repo = where.repository;
  async function pages<T>(request: (page: number) => ForgeRequest, parse: (json: unknown) => T[]) {
    const out: T[] = [];
    let previous = "";
    for (let page = 1; page <= MAX_PAGES; page++) {
      const json = await send(request(page));
      // A server that ignores the page parameter answers the same page again: stop there.
      const text = JSON.stringify(json);
      if (text === previous) break;
      previous = text;
      out.push(...parse(json));
      if (!Array.isArray(json) || json.length < dialect.pageSize) break;
    }
    return out;
  }
  return {
    provider: options.provider,
    repository: repo,
    async setStatus(s) {
      if (!/^[0-9a-f]{7,64}$/i.test(s.sha))
        throw new DeliveryError(`not a commit hash: ${JSON.stringify(s.sha)}`, false);
      const description =
        s.description.length <= DESCRIPTION_MAX
          ? s.description
          : `${s.description.slice(0, DESCRIPTION_MAX - 1)}…`;
      await send(dialect.setStatus(repo, { ...s, description }));
    },
    async comment({ pr, body, marker }) {
      const line = markerLine(marker);
      const text = `${line}\n${body}`;
      const existing = await pages(
        (page) => dialect.listComments(repo, pr, page),
        (json) => dialect.comments(json),
      );
      const mine = existing.find((c) => c.body.includes(line));
      if (mine) {
        if (mine.body !== text) await send(dialect.updateComment(repo, pr, mine.id, text));
        return { id: mine.id, created: false };
      }
      const made = (await send(dialect.createComment(repo, pr, text))) as Json | undefined;
      return { id: num(made?.id), created: true };
    },
    async pullsForHead(sha) {
      return await pages(
        (page) => dialect.pullsForHead(repo, sha, page),
        (json) => dialect.pulls(json, sha),
      );
    },
  };
}
