/**
 * base: leaf utilities with no mesh or Kubernetes knowledge (errors, logging, config, timing).
 * Must not import any other part of src/.
 */
export * from "./errors.js";
export * from "./log.js";
export * from "./env.js";
export * from "./async.js";
export * from "./version.js";
