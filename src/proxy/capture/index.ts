/**
 * capture: how traffic reaches the sidecar — iptables rules in the pod's network namespace
 * (`isthmus proxy init`) and the original destination of a redirected connection.
 */
export * from "./iptables.js";
export { originalDestination } from "./original-dst.js";
