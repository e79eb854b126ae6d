/**
 * OpenAPI v3 documents, one per served group version, built from the resource registry, plus
 * the `/openapi/v3` index with content hashes. What kubectl reads from them:
 * - each PATCH operation's `x-kubernetes-group-version-kind` and its `fieldValidation` query
 *   parameter (so kubectl leaves field validation to the server instead of validating client-side);
 * - the PATCH request body's media types (strategic merge for built-in kinds only, so custom
 *   resources get JSON merge patches, as kubectl does against Kubernetes);
 * - component schemas tagged with `x-kubernetes-group-version-kind`, from which `kubectl apply`
 *   computes strategic merge patches (x-kubernetes-patch-merge-key / -strategy). Built-in kinds'
 *   schemas come from the store's type table (../schema.ts), pruned to what each document uses.
 */
import { createHash } from "node:crypto";
import type { ResourceInfo } from "../registry.js";
import { modelOf, openApiSchemas } from "../schema.js";
import { groupVersions, subresourcesOf } from "./discovery.js";

const componentPrefix = "#/components/schemas/";

/** Options of the OpenAPI builders. */
export interface OpenApiOptions {
  gitVersion: string;
  /** Publish the built-in kinds' field schemas (default true); false publishes untagged placeholders, so kubectl falls back to its compiled-in patch metadata. */
  builtinSchemas?: boolean;
}

let allModels: Record<string, Record<string, unknown>> | undefined;

/** The component schemas reachable from `roots`, GVK-tagged for the kinds served in this document. */
function builtinComponents(
  roots: ReadonlyMap<string, { group: string; version: string; kind: string }>,
): Record<string, unknown> {
  allModels ??= openApiSchemas(componentPrefix, new Map());
  const out: Record<string, unknown> = {};
  const queue = [...roots.keys()];
  while (queue.length > 0) {
    const name = queue.pop() ?? "";
    if (name in out) continue;
    const schema = allModels[name];
    if (!schema) continue;
    const gvk = roots.get(name);
    out[name] = gvk ? { ...schema, "x-kubernetes-group-version-kind": [gvk] } : schema;
    for (const m of JSON.stringify(schema).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
      if (m[1] && !(m[1] in out)) queue.push(m[1]);
    }
  }
  return out;
}

/** The path key of a group version in the index: "api/v1", "apis/apps/v1". */
export function gvPath(group: string, version: string): string {
  return group === "" ? `api/${version}` : `apis/${group}/${version}`;
}

/** Go-style package name Kubernetes uses for a group's schemas: "io.k8s.api.apps.v1", "io.k8s.api.core.v1". */
function schemaPrefix(info: ResourceInfo): string {
  if (info.crd) {
    return `${info.group.split(".").reverse().join(".")}.${info.version}`;
  }
  const short =
    info.group === ""
      ? "core"
      : info.group.endsWith(".k8s.io")
        ? info.group.slice(0, -".k8s.io".length).split(".")[0]
        : info.group;
  const base =
    info.group === "apiextensions.k8s.io"
      ? "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
      : `io.k8s.api.${short}`;
  return `${base}.${info.version}`;
}

const meta = "io.k8s.apimachinery.pkg.apis.meta.v1";
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function param(name: string, description: string, type = "string"): object {
  return { name, in: "query", description, schema: { type, uniqueItems: true } };
}

const dryRun = param("dryRun", "When present, modifications are not persisted. Valid value: All.");
const fieldManager = param("fieldManager", "Name of the actor making the change.");
const fieldValidation = param(
  "fieldValidation",
  "How to handle unknown or duplicate fields in the object: Ignore, Warn or Strict.",
);
const listParams = [
  param("labelSelector", "A selector to restrict the list of returned objects by their labels."),
  param("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
  param("limit", "Maximum number of items to return.", "integer"),
  param("continue", "The continue token of a previous list call."),
  param("resourceVersion", "Which resourceVersion to serve from."),
  param("watch", "Watch for changes and return them as a stream of events.", "boolean"),
  param("allowWatchBookmarks", "Requests BOOKMARK watch events.", "boolean"),
  param("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
];

function pathParams(namespaced: boolean, named: boolean): object[] {
  const out: object[] = [];
  if (named)
    out.push({
      name: "name",
      in: "path",
      required: true,
      description: "name of the object",
      schema: { type: "string", uniqueItems: true },
    });
  if (namespaced)
    out.push({
      name: "namespace",
      in: "path",
      required: true,
      description: "object name and auth scope",
      schema: { type: "string", uniqueItems: true },
    });
  out.push(param("pretty", "If 'true', then the output is pretty printed."));
  return out;
}

function json(schema: object): object {
  return {
    content: {
      "application/json": { schema },
      "application/yaml": { schema },
    },
  };
}

interface OpArgs {
  info: ResourceInfo;
  action: string;
  opId: string;
  params?: object[];
  body?: object;
  response: object;
  responseCodes?: string[];
  gvk: { group: string; version: string; kind: string };
}

function op(a: OpArgs): object {
  const responses: Record<string, object> = {};
  for (const code of a.responseCodes ?? ["200"])
    responses[code] = { description: code === "201" ? "Created" : "OK", ...json(a.response) };
  responses["401"] = { description: "Unauthorized" };
  return {
    tags: [a.info.group === "" ? "core_v1" : `${a.info.group}_${a.info.version}`],
    description: `${a.action} ${a.info.kind}`,
    operationId: a.opId,
    ...(a.params ? { parameters: a.params } : {}),
    ...(a.body ? { requestBody: a.body } : {}),
    responses,
    "x-kubernetes-action": a.action,
    "x-kubernetes-group-version-kind": a.gvk,
  };
}

function schemaName(info: ResourceInfo, kind = info.kind): string {
  return `${schemaPrefix(info)}.${kind}`;
}

function placeholder(description: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    description,
    type: "object",
    properties: {
      apiVersion: {
        type: "string",
        description: "APIVersion defines the versioned schema of this representation of an object.",
      },
      kind: {
        type: "string",
        description: "Kind is a string value representing the REST resource this object represents.",
      },
      metadata: { allOf: [ref(`${meta}.ObjectMeta`)], default: {} },
    },
    "x-kubernetes-preserve-unknown-fields": true,
    ...extra,
  };
}

/** Builds the OpenAPI v3 document of one group version; undefined when it is not served. */
export function openApiDocument(
  resources: readonly ResourceInfo[],
  group: string,
  version: string,
  opts: OpenApiOptions,
): object | undefined {
  const list = resources.filter((r) => r.group === group && r.version === version);
  if (list.length === 0) return undefined;
  const prefix = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
  const paths: Record<string, object> = {};
  const schemas: Record<string, unknown> = {
    [`${meta}.ObjectMeta`]: {
      description: "ObjectMeta is metadata that all persisted resources must have.",
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    },
    [`${meta}.ListMeta`]: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
    [`${meta}.Status`]: {
      description: "Status is a return value for calls that don't return other objects.",
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    },
    [`${meta}.Patch`]: {
      description: "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
      type: "object",
    },
    [`${meta}.DeleteOptions`]: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
    [`${meta}.WatchEvent`]: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
  };
  const models = new Map<string, { group: string; version: string; kind: string }>();
  for (const info of [...list].sort((a, b) => a.resource.localeCompare(b.resource))) {
    const gvk = { group: info.group, version: info.version, kind: info.kind };
    const model = opts.builtinSchemas === false ? undefined : modelOf(info);
    const name = model ?? schemaName(info);
    const self = ref(name);
    const listName = schemaName(info, info.listKind);
    if (info.crd !== undefined) {
      const crdSchema =
        typeof info.schema === "object" && info.schema !== null
          ? { ...(info.schema as Record<string, unknown>) }
          : placeholder(`${info.kind} is a custom resource.`);
      schemas[name] = { ...crdSchema, "x-kubernetes-group-version-kind": [gvk] };
    } else if (model !== undefined) {
      models.set(model, gvk);
    } else {
      schemas[name] = placeholder(
        `${info.kind} (schema not published by this server; fields are validated server-side).`,
      );
    }
    schemas[listName] = {
      description: `${info.listKind} is a list of ${info.kind}.`,
      type: "object",
      required: ["items"],
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        items: { type: "array", items: { allOf: [self], default: {} } },
        metadata: { allOf: [ref(`${meta}.ListMeta`)], default: {} },
      },
      "x-kubernetes-group-version-kind": [{ ...gvk, kind: info.listKind }],
    };
    const collection = info.namespaced
      ? `${prefix}/namespaces/{namespace}/${info.resource}`
      : `${prefix}/${info.resource}`;
    const opBase = `${info.kind}`;
    const writeParams = [dryRun, fieldManager, fieldValidation];
    const patchTypes = ["application/json-patch+json", "application/merge-patch+json"];
    if (info.crd === undefined) patchTypes.push("application/strategic-merge-patch+json");
    patchTypes.push("application/apply-patch+yaml");
    const patchBody = {
      required: true,
      content: Object.fromEntries(patchTypes.map((t) => [t, { schema: ref(`${meta}.Patch`) }])),
    };
    const verbs = new Set(info.verbs);
    const coll: Record<string, unknown> = { parameters: pathParams(info.namespaced, false) };
    if (verbs.has("list"))
      coll.get = op({ info, action: "list", opId: `list${opBase}`, params: listParams, response: ref(listName), gvk });
    if (verbs.has("create"))
      coll.post = op({
        info,
        action: "post",
        opId: `create${opBase}`,
        params: writeParams,
        body: { required: true, ...json(self) },
        response: self,
        responseCodes: ["200", "201", "202"],
        gvk,
      });
    if (verbs.has("deletecollection"))
      coll.delete = op({
        info,
        action: "deletecollection",
        opId: `deleteCollection${opBase}`,
        params: listParams,
        response: ref(`${meta}.Status`),
        gvk,
      });
    paths[collection] = coll;
    if (info.namespaced && verbs.has("list")) {
      paths[`${prefix}/${info.resource}`] = {
        parameters: pathParams(false, false),
        get: op({
          info,
          action: "list",
          opId: `list${opBase}ForAllNamespaces`,
          params: listParams,
          response: ref(listName),
          gvk,
        }),
      };
    }
    const item: Record<string, unknown> = { parameters: pathParams(info.namespaced, true) };
    if (verbs.has("get")) item.get = op({ info, action: "get", opId: `read${opBase}`, response: self, gvk });
    if (verbs.has("update"))
      item.put = op({
        info,
        action: "put",
        opId: `replace${opBase}`,
        params: writeParams,
        body: { required: true, ...json(self) },
        response: self,
        responseCodes: ["200", "201"],
        gvk,
      });
    if (verbs.has("patch"))
      item.patch = op({
        info,
        action: "patch",
        opId: `patch${opBase}`,
        params: [...writeParams, param("force", "Force apply.", "boolean")],
        body: patchBody,
        response: self,
        responseCodes: ["200", "201"],
        gvk,
      });
    if (verbs.has("delete"))
      item.delete = op({
        info,
        action: "delete",
        opId: `delete${opBase}`,
        params: [
          dryRun,
          param("gracePeriodSeconds", "Seconds before the object is deleted.", "integer"),
          param("propagationPolicy", "Orphan, Background or Foreground."),
        ],
        response: self,
        responseCodes: ["200", "202"],
        gvk,
      });
    if (Object.keys(item).length > 1) paths[`${collection}/{name}`] = item;
    for (const sub of subresourcesOf(info)) {
      if (sub.name === "exec" || sub.name === "attach" || sub.name === "portforward" || sub.name === "log") continue;
      const subGvk = sub.kind.group !== "" ? sub.kind : gvk;
      const subSelf =
        sub.kind.group !== ""
          ? ref(`io.k8s.api.${sub.kind.group.split(".")[0]}.${sub.kind.version}.${sub.kind.kind}`)
          : self;
      if (sub.kind.group !== "")
        schemas[`io.k8s.api.${sub.kind.group.split(".")[0]}.${sub.kind.version}.${sub.kind.kind}`] = placeholder(
          sub.kind.kind,
        );
      const s: Record<string, unknown> = { parameters: pathParams(info.namespaced, true) };
      const sv = new Set(sub.verbs);
      const id = `${opBase}${sub.name[0]?.toUpperCase()}${sub.name.slice(1)}`;
      if (sv.has("get")) s.get = op({ info, action: "get", opId: `read${id}`, response: subSelf, gvk: subGvk });
      if (sv.has("update"))
        s.put = op({
          info,
          action: "put",
          opId: `replace${id}`,
          params: writeParams,
          body: { required: true, ...json(subSelf) },
          response: subSelf,
          gvk: subGvk,
        });
      if (sv.has("patch"))
        s.patch = op({
          info,
          action: "patch",
          opId: `patch${id}`,
          params: writeParams,
          body: patchBody,
          response: subSelf,
          gvk: subGvk,
        });
      if (sv.has("create"))
        s.post = op({
          info,
          action: "post",
          opId: `create${id}`,
          params: writeParams,
          body: { required: true, ...json(subSelf) },
          response: subSelf,
          responseCodes: ["200", "201"],
          gvk: subGvk,
        });
      paths[`${collection}/{name}/${sub.name}`] = s;
    }
  }
  if (models.size > 0) Object.assign(schemas, builtinComponents(models));
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: opts.gitVersion },
    paths,
    components: { schemas },
  };
}

/** The served documents, rendered once per registry generation, with their hashes. */
export class OpenApiCache {
  #docs: Map<string, { body: string; hash: string }> | undefined;

  constructor(
    private readonly resources: () => readonly ResourceInfo[],
    private readonly opts: OpenApiOptions,
  ) {}

  /** Forgets rendered documents (call when the registry changes). */
  invalidate(): void {
    this.#docs = undefined;
  }

  #render(): Map<string, { body: string; hash: string }> {
    if (this.#docs) return this.#docs;
    const docs = new Map<string, { body: string; hash: string }>();
    const all = this.resources();
    for (const [group, versions] of groupVersions(all)) {
      for (const version of versions) {
        const doc = openApiDocument(all, group, version, this.opts);
        if (doc === undefined) continue;
        const body = JSON.stringify(doc);
        docs.set(gvPath(group, version), { body, hash: createHash("sha512").update(body).digest("hex").toUpperCase() });
      }
    }
    this.#docs = docs;
    return docs;
  }

  /** `GET /openapi/v3`. */
  index(): object {
    const paths: Record<string, { serverRelativeURL: string }> = {};
    for (const [p, d] of this.#render()) paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${d.hash}` };
    return { paths };
  }

  /** `GET /openapi/v3/<path>`: the document's JSON text and hash, or undefined. */
  document(path: string): { body: string; hash: string } | undefined {
    return this.#render().get(path);
  }
}
