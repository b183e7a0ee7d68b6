/**
 * berth's health verdicts (agent/health) against kstatus itself: a Go program built from the Go module proxy
 * with sigs.k8s.io/cli-utils/pkg/kstatus/status (scripts/kstatus/) computes the status of every fixture in
 * test/fixtures/health/; every disagreement must be listed below with its reason.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { assessHealth } from "../../agent/health/assess.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { goBuild } from "../support/go-build.ts";

const DIR = join(import.meta.dir, "..", "fixtures", "health");

/** Fixtures where berth deliberately says something else than kstatus, and why. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  "deployment-paused.yaml":
    "a paused Deployment is what the user asked for: berth says Current; kstatus waits for a rollout that cannot progress while paused",
  "deployment-scaled-to-zero.yaml":
    "replicas: 0 with no Available condition yet: kstatus waits for the condition; berth counts zero of zero replicas as done",
  "statefulset-scaled-to-zero.yaml":
    "replicas: 0 with currentRevision ≠ updateRevision: kstatus waits for the revisions to match; with no Pod to roll berth counts it done",
  "job-running.yaml":
    "kstatus calls a Job Current once it has started; berth waits for its completions, since the sync is not done until the Job is",
  "job-suspended.yaml":
    "a suspended Job is what the user asked for: berth says Current; kstatus waits for it to start",
  "namespace-terminating.yaml":
    "status.phase Terminating without a deletionTimestamp (finalizers still running): kstatus reads only the deletionTimestamp",
  "persistentvolumeclaim-lost.yaml":
    "a Lost claim will not become Bound by waiting: berth fails it at once; kstatus keeps it InProgress",
  "pod-evicted.yaml":
    "kstatus calls any completed Pod Current; berth reports a Pod that completed unsuccessfully (here evicted) as Failed, naming why",
  "pod-failed.yaml":
    "kstatus calls any completed Pod Current; berth reports a Pod that completed unsuccessfully as Failed, naming the container and exit code",
  "pod-unknown-phase.yaml":
    "kstatus returns an error for the Unknown phase; berth says Unknown with the reason",
  "service-loadbalancer-pending.yaml":
    "kstatus calls every Service Current; berth waits for a LoadBalancer's ingress address, as Argo CD does",
};

interface Case {
  file: string;
  obj: KubeObject;
  now: number | undefined;
}

const cases: Case[] = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((file) => {
    const [head, body] = parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map(
      (d) => d.toJS() as Record<string, unknown>,
    );
    const now = typeof head?.now === "string" ? Date.parse(head.now) : undefined;
    return { file, obj: body as unknown as KubeObject, now };
  });

/**
 * kstatus reads the real clock (a Pod's 15 s schedule window); a fixture with its own `now` is shown to it with
 * the creation time moved so the object is as old at the real clock as at the fixture's.
 */
function forOracle(c: Case): KubeObject {
  const created = Date.parse(String(c.obj.metadata?.creationTimestamp ?? ""));
  if (c.now === undefined || Number.isNaN(created)) return c.obj;
  const at = new Date(Date.now() - (c.now - created)).toISOString().replace(/\.\d{3}Z$/, "Z");
  return { ...c.obj, metadata: { ...c.obj.metadata, creationTimestamp: at } } as KubeObject;
}

/** kstatus's verdicts, in the order of `cases` (builds the oracle on first use: ~2 minutes cold, cached after). */
async function kstatus(): Promise<Array<{ status: string; message: string }>> {
  const bin = await goBuild("kstatus");
  const out = execFileSync(bin, [], { input: JSON.stringify(cases.map(forOracle)), encoding: "utf8" });
  return JSON.parse(out);
}

describe("health verdicts against kstatus (cli-utils v0.37.2)", () => {
  test("every fixture agrees with kstatus, except the listed differences", async () => {
    const oracle = await kstatus();
    expect(oracle.length).toBe(cases.length);
    const differ: string[] = [];
    cases.forEach((c, i) => {
      const ours = assessHealth(c.obj, c.now === undefined ? {} : { now: c.now });
      const theirs = oracle[i];
      if (ours.status !== theirs?.status)
        differ.push(
          `${c.file}: berth ${ours.status} (${ours.message}), kstatus ${theirs?.status} (${theirs?.message})`,
        );
    });
    console.log(`kstatus: ${cases.length - differ.length} of ${cases.length} fixtures agree`);
    const unlisted = differ.filter((d) => !KNOWN_DIFFERENCES[d.split(":")[0] ?? ""]);
    const stale = Object.keys(KNOWN_DIFFERENCES).filter((f) => !differ.some((d) => d.startsWith(`${f}:`)));
    expect(unlisted).toEqual([]);
    expect(stale).toEqual([]);
  }, 300_000);
});
