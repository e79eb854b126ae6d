/** Clean-up shared by `cluster create/start/delete`. */
import { teardownCluster } from "../network/index.js";

/**
 * Removes every network namespace, link, route and allocation cluster `name` of `home` made,
 * including what a crashed daemon left. Safe to call when nothing is left.
 */
export async function sweepCluster(home: string, name: string): Promise<void> {
  await teardownCluster({ home, clusterName: name });
}
