/**
 * node: the node of a local cluster — pods as processes in their own network namespaces
 * (what the kubelet and a container runtime do), with the image catalogue, volumes, probes
 * and pod status. Imports only src/base and other devcluster folders; built-in programs are
 * started as processes (`node <repo>/bin/isthmus program <name>`), never imported.
 *
 * Daemon use: `checkNodePrivileges()`; after the network is ensured,
 * `const node = await startNode({ client, clusterName, nodeName, network, repoRoot, stateDir, log })`;
 * `createPodStreams(node)` (src/devcluster/streaming) for the API server; `await node.stop()` on shutdown.
 */
export {
  type CatalogueContext,
  type CatalogueEntry,
  catalogue,
  resolveImage,
  unknownImageMessage,
} from "./catalogue.js";
export { checkNodePrivileges, kubeletVersion, LocalNode, type NodeOptions, startNode } from "./node.js";
export type { PodStatus } from "./pod-types.js";
export type { PodWorker, RunningContainer } from "./pod-worker.js";
export { privilegeArgs, shQuote } from "./process.js";
