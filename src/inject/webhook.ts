/**
 * The injection webhook: AdmissionReview v1 in, a JSONPatch out. `reviewAdmission` is pure;
 * `createInjectionHandler` wraps it for an HTTPS server (istiod serves it on 15017, the
 * Service's port 443, path `/inject`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Logger, silentLogger } from "../base/index.js";
import { annotateSkip, type InjectContext, type InjectValues, injectSidecar } from "./inject.js";
import type { Pod } from "./types.js";

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  namespace?: string;
  name?: string;
  operation?: string;
  object?: unknown;
  [field: string]: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  /** Base64 of the JSON Patch (RFC 6902) document. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: string;
  kind: "AdmissionReview";
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** One RFC 6902 operation, as the API server applies them. */
export type JsonPatchOp = { op: "add" | "replace"; path: string; value: unknown } | { op: "remove"; path: string };

/**
 * Answers one AdmissionReview: the injected pod as a JSONPatch, the skip annotation for a pod
 * left alone, or an allowed response with no patch. Never refuses a pod: a pod the injector
 * cannot understand is let through with a warning, as Istio does.
 */
export function reviewAdmission(review: AdmissionReview, ctx: InjectContext): AdmissionReview {
  const request = review.request;
  const uid = request?.uid ?? "";
  const reply = (response: AdmissionResponse): AdmissionReview => ({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response,
  });
  const pod = asPod(request?.object);
  if (pod === undefined) {
    return reply({ uid, allowed: true, warnings: ["sidecar injection skipped: the request carries no Pod object"] });
  }
  const decision = injectSidecar(pod, { ...ctx, namespace: ctx.namespace ?? request?.namespace });
  const target = decision.kind === "inject" ? decision.pod : annotateSkip(pod, decision);
  if (target === undefined) return reply({ uid, allowed: true });
  const ops = jsonPatch(pod, target);
  return reply({
    uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(ops)).toString("base64"),
  });
}

function asPod(obj: unknown): Pod | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const spec = (obj as { spec?: unknown }).spec;
  if (typeof spec !== "object" || spec === null) return undefined;
  if (!Array.isArray((spec as { containers?: unknown }).containers)) return undefined;
  return obj as Pod;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const escapeToken = (key: string): string => key.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * The JSON Patch that turns `from` into `to`: objects are compared key by key, anything else
 * (arrays included) is replaced whole. "add" on an existing member replaces it (RFC 6902 §4.1).
 */
export function jsonPatch(from: unknown, to: unknown, path = ""): JsonPatchOp[] {
  if (isPlainObject(from) && isPlainObject(to)) {
    const ops: JsonPatchOp[] = [];
    for (const key of Object.keys(from)) {
      if (!(key in to)) ops.push({ op: "remove", path: `${path}/${escapeToken(key)}` });
    }
    for (const [key, value] of Object.entries(to)) {
      const p = `${path}/${escapeToken(key)}`;
      if (!(key in from)) ops.push({ op: "add", path: p, value });
      else ops.push(...jsonPatch(from[key], value, p));
    }
    return ops;
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ op: path === "" ? "replace" : "add", path, value: to }];
}

/**
 * Reads `/inject/k1/v1/...` overrides Istio accepts in the webhook path (`cluster` and `net`),
 * so one injector can serve pods of a cluster whose values differ from its own.
 */
export function valuesForPath(path: string, values: InjectValues): InjectValues | undefined {
  const pathname = path.split("?")[0] ?? "";
  if (pathname !== "/inject" && !pathname.startsWith("/inject/")) return undefined;
  const parts = pathname.slice("/inject".length).split("/").filter(Boolean);
  let out = values;
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const key = parts[i];
    const value = decodeURIComponent(parts[i + 1] ?? "");
    if (key === "cluster") out = { ...out, clusterId: value };
    else if (key === "net") out = { ...out, network: value };
  }
  return out;
}

export interface InjectionHandlerOptions {
  readonly values: InjectValues;
  /** Looks up a namespace's labels; when absent, the webhook's namespaceSelector is trusted. */
  readonly namespaceLabels?: (namespace: string) => Promise<Readonly<Record<string, string>> | undefined>;
  readonly log?: Logger;
  /** Largest request body accepted; default 4 MiB (a pod is far smaller). */
  readonly maxBodyBytes?: number;
}

/**
 * An HTTP request handler serving the injection webhook on `/inject` (and `/inject/...`).
 * Mount it on an HTTPS server whose certificate the MutatingWebhookConfiguration's caBundle trusts.
 */
export function createInjectionHandler(
  opts: InjectionHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const log = opts.log ?? silentLogger;
  const max = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  const fail = (res: ServerResponse, code: number, message: string) => {
    res.writeHead(code, { "content-type": "text/plain; charset=utf-8" }).end(`${message}\n`);
  };
  return (req, res) => {
    const values = valuesForPath(req.url ?? "", opts.values);
    if (values === undefined) return fail(res, 404, `no handler for ${req.url}; the injection webhook is on /inject`);
    if (req.method !== "POST") return fail(res, 405, "the injection webhook accepts POST only");
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("error", (err) => log.warn("webhook request failed", { err }));
    req.on("end", () => {
      if (tooLarge) return fail(res, 413, `AdmissionReview larger than ${max} bytes`);
      void answer(Buffer.concat(chunks), values)
        .then((body) => {
          res.writeHead(200, { "content-type": "application/json" }).end(body);
        })
        .catch((err: unknown) => {
          log.warn("could not answer AdmissionReview", { err });
          fail(res, 400, err instanceof Error ? err.message : String(err));
        });
    });
  };

  async function answer(raw: Buffer, values: InjectValues): Promise<string> {
    let review: unknown;
    try {
      review = JSON.parse(raw.toString("utf8"));
    } catch {
      throw new Error("body is not JSON; expected an admission.k8s.io/v1 AdmissionReview");
    }
    if (!isPlainObject(review) || review.kind !== "AdmissionReview" || !isPlainObject(review.request)) {
      throw new Error("body is not an AdmissionReview with a request; expected admission.k8s.io/v1 AdmissionReview");
    }
    const typed = review as unknown as AdmissionReview;
    const namespace = typed.request?.namespace;
    const namespaceLabels =
      opts.namespaceLabels !== undefined && namespace !== undefined ? await opts.namespaceLabels(namespace) : undefined;
    const out = reviewAdmission(typed, { ...values, namespaceLabels });
    // Answer in the version asked (v1beta1 reviews are answered alike; the shape is the same).
    out.apiVersion = typeof review.apiVersion === "string" ? review.apiVersion : out.apiVersion;
    log.debug("answered AdmissionReview", { namespace, patched: out.response?.patch !== undefined });
    return JSON.stringify(out);
  }
}
