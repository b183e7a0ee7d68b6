/** What every route group shares: the app lookups over the loop, JSON bodies and integer parameters. */
import type { Context } from "hono";
import type { ApiDeps, ApiEnv } from "../app.ts";
import {
  type AppSpecView,
  type AppStatusView,
  type AppView,
  appStatus,
  appView,
  type GitView,
} from "../app-view.ts";
import { HttpError } from "../http-error.ts";
import { validateBody } from "../schemas.ts";

/** One app's state as the loop reports it. */
type LoopState = ReturnType<ApiDeps["loop"]["status"]>[number];

/** The apps as the API sees them now, by name. */
export interface AppLookup {
  /** Generated apps come and go with their directories: the loop's list is the current one. */
  appsNow(): ReadonlyArray<AppSpecView>;
  /** 404 for an unknown name. */
  specOf(name: string): AppSpecView;
  stateOf(name: string): LoopState | undefined;
  gitOf(spec: AppSpecView): GitView;
  views(): AppView[];
  /** Every app's sync and health only (what /metrics reports): no drift or error reads. */
  statuses(): AppStatusView[];
}

export function appLookup(deps: ApiDeps): AppLookup {
  const appsNow = () => deps.loop.appSpecs?.() ?? deps.apps;
  // Only this app's state: status() reads the pins of the apps it returns.
  const stateOf = (name: string) => deps.loop.status(name).find((s) => s.name === name);
  const gitOf = (spec: AppSpecView) => deps.loop.sourceView?.(spec.source ?? "default") ?? deps.loop;
  // One status() for every app, not one per app: per app, each reading every app's pin, that was apps² ledger
  // reads per request (10,000 for 100 apps, scripts/bench/README.md "Scale").
  const eachApp = <T>(fn: (spec: AppSpecView, state: LoopState | undefined) => T): T[] => {
    const states = new Map(deps.loop.status().map((st) => [st.name, st]));
    return appsNow().map((a) => fn(a, states.get(a.name)));
  };
  return {
    appsNow,
    stateOf,
    gitOf,
    specOf(name) {
      const spec = appsNow().find((a) => a.name === name);
      if (!spec) throw new HttpError(404, "NotFound", `app ${name}: no such app`);
      return spec;
    },
    views: () => eachApp((a, state) => appView(a, state, gitOf(a), deps.ledger, false)),
    statuses: () => eachApp((a, state) => appStatus(a, state, gitOf(a), deps.ledger)),
  };
}

/** Syncs an API call starts are recorded under the token's name. */
export const byCaller = (c: Context<ApiEnv>) => `api:${c.get("caller").name}`;

/** Reads and validates a JSON body (its size is bodyLimit's); an empty body is allowed when `optional`. */
export async function readJson(
  c: Context<ApiEnv>,
  schema: "ActionRequest" | "ApproveRequest" | "PinRequest",
  optional: boolean,
): Promise<unknown> {
  const text = await c.req.text();
  if (text === "" && optional) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(422, "InvalidRequest", "request body: not JSON");
  }
  return validateBody(schema, body);
}

/** Parses an optional integer query parameter within bounds; 422 otherwise. */
export function intParam(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max)
    throw new HttpError(
      422,
      "InvalidRequest",
      `${name}: expected an integer from ${min} to ${max}, got "${text.slice(0, 40)}"`,
    );
  return n;
}
