/**
 * Builders for the `Status` bodies kube-apiserver answers with, one per reason. Shapes follow
 * the captured samples in shared/reference/kube-api-samples (field order included, so HTTP
 * bodies compare byte for byte with a real server's).
 */
import { ApiError, type StatusBody } from "../api/types.js";

type Details = NonNullable<StatusBody["details"]>;
export type Cause = NonNullable<Details["causes"]>[number];

/** The one place a failure `Status` body is shaped; `details` is left out when undefined, as Kubernetes does. */
export function failureStatus(code: number, reason: string, message: string, details?: Details): StatusBody {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details !== undefined ? { details } : {}),
    code,
  };
}

function status(code: number, reason: string, message: string, details?: Details): ApiError {
  return new ApiError(failureStatus(code, reason, message, details));
}

/** `kind` in details is the group-qualified plural ("services", "deployments.apps"), as Kubernetes reports it. */
export function qualifiedResource(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

/** `details` naming one object: name (left out when undefined), group (left out for the core group), kind. */
export function objectDetails(group: string, kind: string, name: string | undefined): Details {
  const details: Details = {};
  if (name !== undefined) details.name = name;
  if (group) details.group = group;
  details.kind = kind;
  return details;
}

/** 404 `<resource> "<name>" not found`. */
export function notFound(group: string, resource: string, name: string): ApiError {
  return status(
    404,
    "NotFound",
    `${qualifiedResource(group, resource)} "${name}" not found`,
    objectDetails(group, resource, name),
  );
}

/** 404 for a path the server does not serve at all. */
export function resourceNotServed(): ApiError {
  return status(404, "NotFound", "the server could not find the requested resource", {});
}

/** 409 `<resource> "<name>" already exists`. */
export function alreadyExists(group: string, resource: string, name: string): ApiError {
  const message = `${qualifiedResource(group, resource)} "${name}" already exists`;
  return status(409, "AlreadyExists", message, objectDetails(group, resource, name));
}

/** 409 Conflict for a stale resourceVersion (or a failed precondition). */
export function conflict(group: string, resource: string, name: string, why?: string): ApiError {
  const msg = `Operation cannot be fulfilled on ${qualifiedResource(group, resource)} "${name}": ${
    why ?? "the object has been modified; please apply your changes to the latest version and try again"
  }`;
  return status(409, "Conflict", msg, objectDetails(group, resource, name));
}

/** 422 Invalid with field causes; the message lists each cause as `field: message`. */
export function invalid(group: string, kind: string, name: string, causes: Cause[]): ApiError {
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const msg = `${kind}${group ? `.${group}` : ""} "${name}" is invalid: ${
    parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`
  }`;
  return status(422, "Invalid", msg, { ...objectDetails(group, kind, name), causes });
}

/** 400 BadRequest with a free-form message. */
export function badRequest(message: string): ApiError {
  return status(400, "BadRequest", message);
}

/** 403 Forbidden with a free-form message, e.g. for writes into a terminating namespace. */
export function forbidden(group: string, resource: string, name: string, message: string): ApiError {
  return status(403, "Forbidden", message, objectDetails(group, resource, name || undefined));
}

/** 405 MethodNotAllowed: the resource exists but does not support `verb`. */
export function methodNotAllowed(verb: string, group: string, resource: string): ApiError {
  return status(
    405,
    "MethodNotAllowed",
    `${verb} is not supported on resources of kind "${qualifiedResource(group, resource)}"`,
    {},
  );
}

/** 410 Expired: a watch or continue token older than the history window. */
export function expired(message: string): ApiError {
  return status(410, "Expired", message);
}

/** 415 UnsupportedMediaType, e.g. a strategic merge patch of a custom resource. */
export function unsupportedMediaType(message: string): ApiError {
  return status(415, "UnsupportedMediaType", message);
}

/** 504 for a list at a resourceVersion the store has not reached, as kube-apiserver answers it. */
export function tooLargeResourceVersion(requested: string, current: number): ApiError {
  return status(504, "Timeout", `Timeout: Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
    retryAfterSeconds: 1,
  });
}

/** 500 InternalError. */
export function internalError(message: string): ApiError {
  return status(500, "InternalError", `Internal error occurred: ${message}`, {
    causes: [{ message }],
  });
}
