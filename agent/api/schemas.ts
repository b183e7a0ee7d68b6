/** The API's JSON Schemas (schemas/api/*.json): request validation and the OpenAPI document share them. */
import type { ErrorObject } from "ajv";
import actionRequest from "../../schemas/api/action-request.json" with { type: "json" };
import actionResult from "../../schemas/api/action-result.json" with { type: "json" };
import app from "../../schemas/api/app.json" with { type: "json" };
import approval from "../../schemas/api/approval.json" with { type: "json" };
import approveRequest from "../../schemas/api/approve-request.json" with { type: "json" };
import error from "../../schemas/api/error.json" with { type: "json" };
import ledgerEntry from "../../schemas/api/ledger-entry.json" with { type: "json" };
import ledgerSummary from "../../schemas/api/ledger-summary.json" with { type: "json" };
import pinRequest from "../../schemas/api/pin-request.json" with { type: "json" };
import pinResult from "../../schemas/api/pin-result.json" with { type: "json" };
import preview from "../../schemas/api/preview.json" with { type: "json" };
import pushGeneric from "../../schemas/api/push-generic.json" with { type: "json" };
import pushGithub from "../../schemas/api/push-github.json" with { type: "json" };
import pushGitlab from "../../schemas/api/push-gitlab.json" with { type: "json" };
import webhookResult from "../../schemas/api/webhook-result.json" with { type: "json" };
import type { Validator } from "../object/yaml-schema.ts";
import * as generated from "./api-schemas.generated.ts";
import { HttpError } from "./http-error.ts";

/** Every API schema by its OpenAPI component name. */
export const API_SCHEMAS = {
  Error: error,
  App: app,
  LedgerSummary: ledgerSummary,
  LedgerEntry: ledgerEntry,
  ActionRequest: actionRequest,
  ActionResult: actionResult,
  ApproveRequest: approveRequest,
  Approval: approval,
  PinRequest: pinRequest,
  PinResult: pinResult,
  Preview: preview,
  WebhookResult: webhookResult,
  GitHubPush: pushGithub,
  GitLabPush: pushGitlab,
  GenericPush: pushGeneric,
} as const;

/** A schema's component name. */
export type SchemaName = keyof typeof API_SCHEMAS;

/** Compiled ahead of time (scripts/gen-validators.ts): no Ajv compile of 14 schemas at start. */
const validators = new Map(Object.entries(generated as Record<string, Validator>));

/** Checks a parsed body against a schema; throws a 422 HttpError naming every failing field. */
export function validateBody<T>(name: SchemaName, body: unknown): T {
  const validate = validators.get(name);
  if (!validate) throw new Error(`no schema ${name}`);
  if (validate(body)) return body as T;
  const problems = (validate.errors ?? []).map(describe).join("; ");
  throw new HttpError(422, "InvalidRequest", `request body (${name}): ${problems}`);
}

function describe(e: ErrorObject): string {
  const at = e.instancePath ? e.instancePath.slice(1).replaceAll("/", ".") : "body";
  if (e.keyword === "additionalProperties")
    return `${at}: unexpected field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  return `${at}: ${e.message ?? e.keyword}`;
}
