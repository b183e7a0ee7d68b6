/** The systemd unit (scripts/install/berth.service) passes `systemd-analyze verify` with the real binary. */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { berthBinary } from "../support/binary.ts";
import { skipWithout } from "../support/required.ts";

const UNIT = join(import.meta.dir, "..", "..", "scripts", "install", "berth.service");
const analyze = Bun.which("systemd-analyze");

/** Verifies a unit text, with ExecStart pointing at the freshly built binary; returns exit code and output. */
function verify(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "berth-unit-"));
  const file = join(dir, "berth.service");
  writeFileSync(file, text.replaceAll("/usr/local/bin/berth", berthBinary()));
  const r = spawnSync(analyze ?? "false", ["verify", file], { encoding: "utf8" });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

describe.skipIf(skipWithout(analyze !== null, "systemd-analyze (Debian package systemd)"))(
  "scripts/install/berth.service",
  () => {
    const unit = readFileSync(UNIT, "utf8");

    test("systemd-analyze verify accepts it", () => {
      const r = verify(unit);
      expect(r.output).toBe("");
      expect(r.code).toBe(0);
    }, 60_000);

    test("runs `berth run` as its own user with the ledger in /var/lib/berth", () => {
      expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/berth run --config \/etc\/berth\/berth.yaml /m);
      expect(unit).toMatch(/^DynamicUser=yes$/m);
      expect(unit).toMatch(/^User=berth$/m);
      expect(unit).toMatch(/^StateDirectory=berth$/m);
      expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
    });

    test("a broken unit fails verification (the check can fail)", () => {
      const r = verify(unit.replace("ExecStart=/usr/local/bin/berth", "ExecStart=/nonexistent/berth"));
      expect(r.code).not.toBe(0);
      expect(r.output).toContain("/nonexistent/berth");
    });
  },
);
