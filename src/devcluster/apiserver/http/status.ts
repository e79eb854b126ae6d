/**
 * The Status bodies only the HTTP layer produces (authentication, authorization, transport
 * problems), and the mapping from any thrown value to the Status a client receives.
 * Object-level failures (NotFound, Conflict, Invalid ...) come from the store as ApiError; every
 * body, these included, is shaped by ../errors.ts.
 */
import { ApiError, type StatusBody } from "../../api/types.js";
import {
  badRequest,
  failureStatus,
  internalError,
  objectDetails,
  qualifiedResource,
  resourceNotServed,
} from "../errors.js";

/** 401, exactly as kube-apiserver answers a request without valid credentials. */
export function unauthorizedStatus(): StatusBody {
  return failureStatus(401, "Unauthorized", "Unauthorized");
}

/** What the 403 message needs from the request. */
export interface ForbiddenFor {
  readonly username: string;
  readonly verb: string;
  readonly resourceRequest: boolean;
  readonly path: string;
  readonly apiGroup: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * 403 with Kubernetes' wording: `<resource> "<name>" is forbidden: User "<u>" cannot <verb> resource
 * "<resource>" in API group "<group>" in the namespace "<ns>"`, plus `: <reason>` when the authorizer gave one.
 */
export function forbiddenStatus(a: ForbiddenFor, reason: string): StatusBody {
  let msg: string;
  if (!a.resourceRequest) {
    msg = `User "${a.username}" cannot ${a.verb} path "${a.path}"`;
  } else {
    const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    msg = a.namespace
      ? `User "${a.username}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" in the namespace "${a.namespace}"`
      : `User "${a.username}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" at the cluster scope`;
  }
  if (reason) msg = `${msg}: ${reason}`;
  if (!a.resourceRequest || a.resource === "") return failureStatus(403, "Forbidden", `forbidden: ${msg}`, {});
  const qr = qualifiedResource(a.apiGroup, a.resource);
  const head = a.name ? `${qr} "${a.name}" is forbidden` : `${qr} is forbidden`;
  return failureStatus(403, "Forbidden", `${head}: ${msg}`, objectDetails(a.apiGroup, a.resource, a.name || undefined));
}

/** 404 for a path or resource this server does not serve. */
export function notServedStatus(): StatusBody {
  return resourceNotServed().status;
}

/** 405 for a method the resource (or path) does not support. */
export function methodNotAllowedStatus(method: string, what: string): StatusBody {
  return failureStatus(
    405,
    "MethodNotAllowed",
    `the server does not allow this method on the requested resource (${method} ${what})`,
    {},
  );
}

/** 400 BadRequest naming the problem. */
export function badRequestStatus(message: string): StatusBody {
  return badRequest(message).status;
}

/** 413 for a body over the limit. */
export function tooLargeStatus(limit: number): StatusBody {
  return failureStatus(413, "RequestEntityTooLarge", `Request entity too large: limit is ${limit}`);
}

/** 415 naming the content type and the ones accepted. */
export function unsupportedMediaTypeStatus(contentType: string, accepted: readonly string[], hint = ""): StatusBody {
  return failureStatus(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format (${contentType || "no Content-Type"}) - accepted media types include: ${accepted.join(", ")}${hint ? `; ${hint}` : ""}`,
  );
}

/** 503 for a part of the server that is not running (e.g. pod streams without a node). */
export function unavailableStatus(message: string): StatusBody {
  return failureStatus(503, "ServiceUnavailable", message);
}

/** 500 that never carries a stack trace; the full error goes to the server log only. */
export function internalStatus(message: string): StatusBody {
  return internalError(message).status;
}

/** The Status a client receives for `err`: an ApiError's own body, else a 500 without internals. */
export function statusOf(err: unknown): StatusBody {
  if (err instanceof ApiError) return err.status;
  return internalStatus("the server could not complete the request; see the cluster's log");
}
