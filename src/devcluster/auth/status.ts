/**
 * Builders for the `Status` failures this folder returns, shaped as kube-apiserver shapes them
 * (message, reason, code, details), so clients print the same text they would for Kubernetes.
 */
import { ApiError, type StatusBody } from "../api/types.js";

function failure(code: number, reason: string, message: string, details?: StatusBody["details"]): ApiError {
  return new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

/** 400 BadRequest with the message as given. */
export function badRequest(message: string): ApiError {
  return failure(400, "BadRequest", message);
}

/** 500 InternalError, worded as kube-apiserver words it ("Internal error occurred: ..."). */
export function internalError(message: string): ApiError {
  return failure(500, "InternalError", `Internal error occurred: ${message}`, { causes: [{ message }] });
}

/** 422 Invalid for one field, e.g. `TokenRequest.authentication.k8s.io "x" is invalid: spec.expirationSeconds: ...`. */
export function invalid(
  kind: { group: string; kind: string },
  name: string,
  causes: { field: string; message: string }[],
): ApiError {
  const qualified = kind.group ? `${kind.kind}.${kind.group}` : kind.kind;
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const summary = list.length === 1 ? list[0] : `[${list.join(", ")}]`;
  return failure(422, "Invalid", `${qualified} ${JSON.stringify(name)} is invalid: ${summary}`, {
    name,
    ...(kind.group ? { group: kind.group } : {}),
    kind: kind.kind,
    causes: causes.map((c) => ({ reason: "FieldValueInvalid", message: c.message, field: c.field })),
  });
}
