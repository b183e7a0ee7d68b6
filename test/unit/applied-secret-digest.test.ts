/**
 * A Secret's applied digest: keyed by the ledger's digest key, so the plan can tell an untouched Secret from the
 * watch view (no dry-run, no GET) without putting a digest of its values, which guesses could be tested
 * against, on the object.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { digestOf } from "../../agent/object/canonical.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { APPLIED_DIGEST_ANNOTATION, type PlanCluster, plan } from "../../agent/plan/plan.ts";

const app = { name: "web", namespace: "web", prune: true, allowEmpty: false, force: false };
const secret = (password: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "db" },
  stringData: { password },
});

/** A cluster that serves Secrets and counts what the plan asks of it. */
function counting(): { cluster: PlanCluster; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    cluster: {
      resource: (_group, _version, kind) => (kind === "Secret" ? { namespaced: true } : undefined),
      get: async (ref) => {
        calls.push(`get ${ref.name}`);
        return undefined;
      },
      apply: async (obj) => {
        calls.push(`dry-run ${obj.metadata.name}`);
        return obj;
      },
    },
  };
}

/** The live Secret as the watch view holds it after berth applied `desired`: annotation and berth's entry. */
function applied(desired: KubeObject): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "db",
      namespace: "web",
      ...(desired.metadata.annotations ? { annotations: { ...desired.metadata.annotations } } : {}),
      managedFields: [
        { manager: "berth", operation: "Apply", apiVersion: "v1", time: "2026-11-30T10:00:00Z" },
      ],
    },
  };
}

describe("a Secret's applied digest", () => {
  test("is keyed by the ledger's digest key: stable for the key, different under another, never the plain digest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-secret-digest-"));
    try {
      const one = await Ledger.open(join(dir, "a.db"));
      const again = await Ledger.open(join(dir, "a.db"));
      const other = await Ledger.open(join(dir, "b.db"));
      const s = secret("hunter2");
      const digest = await one.secretDigest(s);
      expect(digest).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
      expect(await again.secretDigest(s)).toBe(digest);
      expect(await other.secretDigest(s)).not.toBe(digest);
      expect(await one.secretDigest(secret("hunter3"))).not.toBe(digest);
      expect(digest).not.toContain(digestOf(s).replace(/^sha256:/, ""));
      for (const l of [one, again, other]) l.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with it, an untouched Secret in the view is planned unchanged with no request; without it, dry-run", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-secret-digest-"));
    try {
      const ledger = await Ledger.open(join(dir, "l.db"));
      const secretDigest = (o: KubeObject) => ledger.secretDigest(o);
      const first = counting();
      const made = await plan(
        {
          app,
          revision: "r1",
          desired: [{ object: secret("hunter2"), source: "s.yaml#0" }],
          inventory: [],
          secretDigest,
        },
        first.cluster,
      );
      const desired = made.changes[0]?.desired as KubeObject;
      // The digest of the final manifest (labels, namespace) without the annotation itself.
      const { annotations: _annotation, ...metadata } = desired.metadata;
      expect(desired.metadata.annotations?.[APPLIED_DIGEST_ANNOTATION]).toBe(
        await ledger.secretDigest({ ...desired, metadata }),
      );
      const live = applied(desired);
      const inventory = [{ ref: made.changes[0]?.ref as NonNullable<(typeof made.changes)[0]>["ref"] }];
      /** A resync of the Secret holding `password`, the view holding `seen`: its plan and the requests made. */
      const resync = async (password: string, seen: KubeObject, digest?: typeof secretDigest) => {
        const { cluster, calls } = counting();
        const p = await plan(
          {
            app,
            revision: "r",
            desired: [{ object: secret(password), source: "s.yaml#0" }],
            inventory,
            live: () => seen,
            ...(digest ? { secretDigest: digest } : {}),
          },
          cluster,
        );
        return { p, calls };
      };

      const again = await resync("hunter2", live, secretDigest);
      expect(again.p.changes.map((c) => c.action)).toEqual(["unchanged"]);
      expect(again.calls).toEqual([]);
      // A changed value digests otherwise: the plan asks the server.
      expect((await resync("hunter3", live, secretDigest)).calls).toEqual(["dry-run db"]);
      // Without the key (a fake ledger), a Secret carries no digest and is dry-run every time.
      const plain = await resync("hunter2", applied({ ...secret("x"), metadata: { name: "db" } }));
      expect(plain.p.changes[0]?.desired?.metadata.annotations?.[APPLIED_DIGEST_ANNOTATION]).toBeUndefined();
      expect(plain.calls).toEqual(["dry-run db"]);
      ledger.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
