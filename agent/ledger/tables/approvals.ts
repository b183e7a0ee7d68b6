/**
 * The approvals table: operators' approvals of held syncs (state, unchained; an approval that lets a sync
 * through is recorded in that entry's verdicts, so the chain keeps it).
 */
import { BerthError } from "../../object/errors.ts";
import type { LedgerAccess } from "./access.ts";

/** An operator's approval of one app at one revision: lifts hold verdicts (and, with overrideWindow, defer ones). */
export interface Approval {
  app: string;
  revision: string;
  by: string;
  approvedAt: string;
  expiresAt: string;
  overrideWindow: boolean;
}

/** How an approval reaches: with overrideWindow it also lifts defer verdicts (a change window). */
export interface ApproveOptions {
  overrideWindow?: boolean;
}

/** Approvals by app and revision. */
export class ApprovalsTable {
  constructor(private readonly access: LedgerAccess) {}

  private get db() {
    return this.access.db;
  }

  /** Approves an app at a revision until `expiresAt` (replacing an earlier approval of the same pair). */
  approve(
    app: string,
    revision: string,
    by: string,
    expiresAt: Date,
    options: ApproveOptions = {},
  ): Approval {
    if (revision.trim() === "")
      throw new BerthError(`cannot approve app ${app}: no revision given`, this.access.err());
    if (!(expiresAt.getTime() > this.access.now().getTime()))
      throw new BerthError(
        `cannot approve app ${app}: expiry ${expiresAt.toISOString()} is not in the future`,
        this.access.err(),
      );
    const approval: Approval = {
      app,
      revision,
      by,
      approvedAt: this.access.now().toISOString(),
      expiresAt: expiresAt.toISOString(),
      overrideWindow: options.overrideWindow === true,
    };
    this.access.guard(`cannot approve app ${app}`, () =>
      this.db.transaction(() => {
        // The next number of the counter (schema.ts): a renewed approval is a new one, numbered anew.
        this.db.run(
          "INSERT INTO meta (key, value) VALUES ('approval_seq', '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        );
        this.db.run(
          "INSERT INTO approvals (app, revision, approved_by, approved_at, expires_at, override_window, seq) VALUES (?, ?, ?, ?, ?, ?, (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'approval_seq')) ON CONFLICT (app, revision) DO UPDATE SET approved_by = excluded.approved_by, approved_at = excluded.approved_at, expires_at = excluded.expires_at, override_window = excluded.override_window, seq = excluded.seq",
          [app, revision, by, approval.approvedAt, approval.expiresAt, approval.overrideWindow ? 1 : 0],
        );
      }),
    );
    return approval;
  }

  /** The unexpired approval of an app at a revision, or undefined. */
  of(app: string, revision: string): Approval | undefined {
    const row = this.access.guard("cannot read approvals", () =>
      this.db.get<{
        approved_by: string;
        approved_at: string;
        expires_at: string;
        override_window: number;
      }>("SELECT * FROM approvals WHERE app = ? AND revision = ?", [app, revision]),
    );
    if (!row || Date.parse(row.expires_at) <= this.access.now().getTime()) return undefined;
    return {
      app,
      revision,
      by: row.approved_by,
      approvedAt: row.approved_at,
      expiresAt: row.expires_at,
      overrideWindow: Number(row.override_window) === 1,
    };
  }
}
