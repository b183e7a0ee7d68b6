/** The in-process HTTP API for tests: its dependencies with quiet defaults (no tokens, anonymous reads). */
import { type ApiDeps, createApi } from "../../agent/api/app.ts";
import { EventBus } from "../../agent/engine/events.ts";
import { Metrics } from "../../agent/engine/metrics.ts";

/** createApi() over a loop and a ledger; `more` sets or overrides any other dependency. */
export function testApi(loop: ApiDeps["loop"], ledger: ApiDeps["ledger"], more: Partial<ApiDeps> = {}) {
  return createApi({
    loop,
    ledger,
    apps: [],
    sourceRef: "main",
    metrics: new Metrics(),
    kubeCodes: () => ({}),
    events: new EventBus(),
    tokens: [],
    anonymousRead: true,
    ...more,
  });
}
