/**
 * The one health interface: anything that judges a live object (the built-in kstatus checks in agent/health,
 * CEL health rules in agent/policy) has this shape, and wait and apply take it from the engine.
 */
import type { HealthStatus, KubeObject } from "./object.ts";

/**
 * A verdict on one object, as kstatus gives it: the status, a reason word and the message a user reads. The
 * reason is the object's own where a condition decided (`ProgressDeadlineExceeded`, `BackoffLimitExceeded`),
 * else one of `Current`, `Progressing`, `Failed`, `Terminating`, `NotFound`, `Unknown`.
 */
export interface HealthResult {
  status: HealthStatus;
  reason: string;
  message: string;
}

/** Judges one live object's health. */
export interface HealthAssessor {
  assess(obj: KubeObject): HealthResult;
  /** What an object still in progress waits for, in plain words (progress lines), if known. */
  describe?(obj: KubeObject): string | undefined;
}
