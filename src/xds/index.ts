/**
 * xds: the xDS half of the control plane, and the client the sidecar builds on.
 * Owns: pure generators (ServiceView + ProxyView + mesh settings → Envoy v3 resources in Istio's
 * names and shapes), the ADS server (SotW and delta, ACK/NACK, versions, debug views), debounced
 * pushes with metrics, and an ADS client. Imports only base, model and gen: never kube or registry.
 *
 * Contract for the discovery assembly (istiod):
 *   const xds = new XdsServer({ view: () => registry.view(), clusterId, network, meshId, mesh,
 *                               debounceAfterMs, debounceMaxMs, log });   // no I/O yet
 *   await xds.listen({ port: 15010 }); await xds.listen({ port: 15012, tls: { key, cert, ca } });
 *   // or xds.register(sharedGrpcServer) to serve ADS beside the CA on one port
 *   xds.pushRequest({ full: true, reason })                          // services changed
 *   xds.pushRequest({ full: false, edsHostnames: new Set([host]) })  // only endpoints changed
 *   xds.connections()  → /debug/syncz     xds.configDump(proxyId) → /debug/config_dump?proxyID=
 *   xds.metrics.snapshot() → /metrics     await xds.close()
 * `view()` must return an immutable snapshot; it is read at the start of each push (requests between
 * pushes are answered from the last push's snapshot, as istiod does). Debounce values come from
 * `readEnv(env, { after: debounceAfterEnv, max: debounceMaxEnv })` (PILOT_DEBOUNCE_AFTER/MAX).
 *
 * Contract for the sidecar: `new XdsClient({ target, node, credentials, validate })`, `subscribe`
 * per type (LDS/CDS wildcard, then RDS/EDS by the names they reference), `on("update")`,
 * `resources(typeUrl)`; `validate` returning a reason NACKs and keeps the last good resources.
 */
export {
  resourceName,
  XdsClient,
  type XdsClientNode,
  type XdsClientOptions,
  type XdsNack,
  type XdsUpdate,
} from "./client/client.js";
export {
  type Clock,
  Debouncer,
  debounceAfterEnv,
  debounceMaxEnv,
  type MergedPush,
  mergePush,
  type PushRequest,
  realClock,
} from "./push/debounce.js";
export { DurationSamples, XdsMetrics, type XdsMetricsSnapshot } from "./push/metrics.js";
export {
  buildBlackHoleCluster,
  buildInboundCluster,
  buildOutboundCluster,
  buildPassthroughCluster,
  generateClusters,
  istioSni,
} from "./resources/cluster.js";
export {
  allTypeUrls,
  blackHoleCluster,
  defaultMeshSettings,
  type Generated,
  inboundCapturePort,
  isHttpProtocol,
  isTypeUrl,
  type MeshSettings,
  outboundCapturePort,
  PushContext,
  passthroughCluster,
  SdsSecret,
  shortType,
  TypeUrl,
  virtualInboundListener,
  virtualOutboundListener,
} from "./resources/common.js";
export {
  buildLoadAssignment,
  type ClusterNameParts,
  generateLoadAssignments,
  parseClusterName,
  workloadMetadata,
} from "./resources/endpoint.js";
export { generate, resourceToBinary, resourceToJson, schemaOf, xdsRegistry } from "./resources/generate.js";
export { type InboundPort, inboundPorts } from "./resources/inbound.js";
export {
  buildApiListener,
  buildOutboundPortListener,
  buildVirtualInbound,
  buildVirtualOutbound,
  FilterName,
  generateListeners,
} from "./resources/listener.js";
export { generateRoutes, resolveHostPort, serviceHostNames, virtualHostDomains } from "./resources/route.js";
export { type StaticServiceInput, StaticServiceView } from "./resources/static-view.js";
export { adsServiceDefinition } from "./server/ads-service.js";
export {
  classifyRequest,
  diffNames,
  type RequestFacts,
  type RequestMeaning,
  type SentState,
} from "./server/classify.js";
export { isProxyless, type NodeDefaults, proxyFromNode } from "./server/node.js";
export {
  type ConnectionStatus,
  type TypeSyncStatus,
  type XdsListenOptions,
  XdsServer,
  type XdsServerOptions,
  type XdsTlsOptions,
} from "./server/server.js";
