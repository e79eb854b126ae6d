/**
 * cluster: the lifecycle of local clusters as the CLI sees them: state folders, status files,
 * kubeconfig entries and the sweep of what a cluster left behind.
 * The daemon that runs a cluster is composed in src/cmd/devcluster.ts.
 */
export * from "./kubeconfig.js";
export * from "./state.js";
export { sweepCluster } from "./lifecycle.js";
