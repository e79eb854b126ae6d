/**
 * inject: sidecar injection. One pure function (`injectSidecar`) and its two adapters: the
 * admission webhook istiod serves, and manifest injection for `isthmus kube-inject`.
 * Must import only base and model: no API calls, no I/O beyond the webhook's HTTP handler.
 */
export * from "./inject.js";
export * from "./types.js";
export * from "./webhook.js";
export * from "./workloads.js";
