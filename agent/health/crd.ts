/** The CustomResourceDefinition rule (kstatus crdConditions). */
import type { KubeObject } from "../object/object.ts";
import { conditionsOf, describeCondition, withDetail } from "./fields.ts";
import { current, failed, type HealthResult, inProgress } from "./result.ts";

/** CRD: NamesAccepted=False or Established=False (not Installing) → Failed, Established=True → Current. */
export function checkCustomResourceDefinition(obj: KubeObject): HealthResult {
  for (const c of conditionsOf(obj)) {
    if (c.type === "NamesAccepted" && c.status === "False") {
      return failed(withDetail("CRD names not accepted", describeCondition(c)), c.reason || "Failed");
    }
    if (c.type === "Established") {
      if (c.status === "False" && c.reason !== "Installing") {
        return failed(withDetail("CRD not established", describeCondition(c)), c.reason || "Failed");
      }
      if (c.status === "True") return current("CRD is established");
    }
  }
  return inProgress("Install in progress");
}
