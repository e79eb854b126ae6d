/**
 * streaming: the node's side of pods/exec, pods/attach, pods/portforward and pods/log — the
 * PodStreams the API server delegates to after authentication and authorization. Imports only
 * src/base and other devcluster folders.
 *
 * Daemon use: `const streams = createPodStreams({ node, log })`, handed to the API server's HTTP layer.
 */
export { exitStatus, findContainer, relayToPodPort, spawnInContainer } from "./exec.js";
export { createPodStreams, type PodStreamsOptions } from "./pod-streams.js";
