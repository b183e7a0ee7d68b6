/** A small client of a running agent's API, for `berth status --server`. */
import { BerthError } from "../object/errors.ts";
import type { AppView } from "./app-view.ts";

/** Fetches GET /api/v1/apps; errors name the server and carry the API's reason (the agent is Unavailable). */
export async function fetchApps(server: string, token: string | undefined): Promise<AppView[]> {
  const url = `${server.replace(/\/+$/, "")}/api/v1/apps`;
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    throw new BerthError(`cannot reach the agent: ${(err as Error).message}`, {
      subject: server,
      reason: "Unavailable",
      cause: err,
    });
  }
  const body = (await res.json().catch(() => ({}))) as {
    apps?: AppView[];
    error?: { reason: string; message: string };
  };
  if (!res.ok || !body.apps)
    throw new BerthError(
      `HTTP ${res.status} ${body.error?.reason ?? ""}: ${body.error?.message ?? "unexpected answer"}`,
      { subject: server, reason: "Unavailable" },
    );
  return body.apps;
}
