/**
 * network: the machine-level networking of local clusters. Owns the allocation registry
 * (/run/isthmus), bridges, pod network namespaces, ClusterIP addresses, the userspace service
 * proxy and the cluster DNS server. Imports only src/base and other devcluster folders.
 *
 * Daemon use: `allocateCluster` → `sweep` when `previousOwnerDied` → `ensureNetwork` →
 * `startServiceNetworking` (proxy + DNS) and `PodNetworks` for the node; on shutdown
 * `close()` the service networking and `stopCluster`; `cluster delete` calls `teardownCluster`.
 */
export {
  type AllocateOptions,
  addServiceIp,
  allocateCluster,
  type ClusterNetwork,
  clusterDomain,
  ensureNetwork,
  inCidr,
  lookupCluster,
  netnsPrefix,
  type PodNetwork,
  PodNetworks,
  projectRange,
  removeServiceIp,
  resolvConf,
  stopCluster,
  sweep,
  teardownCluster,
  vethNames,
} from "./cluster-network.js";
export { decodeQuery, decodeResponse, encodeQuery, encodeResponse, RecordType, Rcode } from "./dns-codec.js";
export { AllocationError, defaultRegistryDir, Registry } from "./registry.js";
export {
  answerQuery,
  DnsServer,
  type EndpointAddress,
  type Lookup,
  type ServiceInfo,
  ServiceProxy,
  ServiceTable,
  startServiceNetworking,
} from "./services.js";
