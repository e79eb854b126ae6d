/** Privilege checks and clean-up shared by `cluster create/start/delete`. */
import { teardownCluster } from "../network/index.js";
import { checkNodePrivileges } from "../node/index.js";

/** undefined when this process may create network namespaces; else what the user must do. */
export const checkPrivileges = checkNodePrivileges;

/**
 * Removes every network namespace, link, route and allocation cluster `name` of `home` made,
 * including what a crashed daemon left. Safe to call when nothing is left.
 */
export async function sweepCluster(home: string, name: string): Promise<void> {
  await teardownCluster({ home, clusterName: name });
}
