/**
 * Validation of the built-in kinds as kube-apiserver words it: names (DNS-1123 subdomain, DNS-1123
 * label, DNS-1035 label, path segment), labels, required fields, enums and immutable fields. Returns
 * the field causes of a 422 Invalid; an empty list means valid.
 */
import type { KubeObject } from "../api/types.js";
import { crValidate } from "./crschema.js";
import type { Cause } from "./errors.js";
import { isRecord, jsonEqual } from "./meta.js";
import type { ResourceInfo } from "./registry.js";
import { type LabelSelector, matchLabelSelector } from "./selectors.js";

type Obj = Record<string, unknown>;

const subdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Re = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedNameRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const q = (v: unknown): string => JSON.stringify(v);

/** Go's %#v-ish rendering Kubernetes uses in some messages, close enough for people to read. */
function goValue(v: unknown): string {
  if (isRecord(v)) {
    return `map[string]string{${Object.entries(v)
      .map(([k, x]) => `${q(k)}:${q(x)}`)
      .join(", ")}}`;
  }
  return q(v);
}

const invalidValue = (field: string, value: unknown, why: string): Cause => ({
  reason: "FieldValueInvalid",
  message: `Invalid value: ${typeof value === "string" ? q(value) : goValue(value)}: ${why}`,
  field,
});
const required = (field: string, detail?: string): Cause => ({
  reason: "FieldValueRequired",
  message: detail ? `Required value: ${detail}` : "Required value",
  field,
});
const notSupported = (field: string, value: unknown, allowed: string[]): Cause => ({
  reason: "FieldValueNotSupported",
  message: `Unsupported value: ${q(value)}: supported values: ${allowed.map(q).join(", ")}`,
  field,
});
const duplicate = (field: string, value: unknown): Cause => ({
  reason: "FieldValueDuplicate",
  message: `Duplicate value: ${q(value)}`,
  field,
});
const immutable = (field: string, value: unknown): Cause => invalidValue(field, value, "field is immutable");

/** Messages for name formats, worded as Kubernetes does. */
export function checkSubdomain(v: string): string[] {
  const out: string[] = [];
  if (v.length > 253) out.push("must be no more than 253 characters");
  if (!subdomainRe.test(v)) {
    out.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  }
  return out;
}

export function checkLabel(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push("must be no more than 63 characters");
  if (!labelRe.test(v)) {
    out.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  return out;
}

export function checkDns1035(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push("must be no more than 63 characters");
  if (!dns1035Re.test(v)) {
    out.push(
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
  }
  return out;
}

function checkPathSegment(v: string): string[] {
  if (v === "." || v === "..") return [`may not be '${v}'`];
  const bad = ["/", "%"].filter((c) => v.includes(c));
  return bad.map((c) => `may not contain '${c}'`);
}

type NameCheck = (v: string) => string[];

function nameCheck(info: ResourceInfo): NameCheck {
  if (info.group === "" && info.resource === "namespaces") return checkLabel;
  if (info.group === "" && info.resource === "services") return checkDns1035;
  if (info.group === "rbac.authorization.k8s.io") return checkPathSegment;
  return checkSubdomain;
}

function checkQualifiedKey(k: string): string[] {
  const slash = k.indexOf("/");
  const prefix = slash >= 0 ? k.slice(0, slash) : "";
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  const out: string[] = [];
  if (slash >= 0) out.push(...checkSubdomain(prefix).map((m) => `prefix part ${m}`));
  if (name.length === 0 || name.length > 63 || !qualifiedNameRe.test(name)) {
    out.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  }
  return out;
}

function validateMeta(info: ResourceInfo, o: KubeObject, out: Cause[]): void {
  const m = o.metadata;
  const check = nameCheck(info);
  if (!m.name) {
    if (!m.generateName) out.push(required("metadata.name", "name or generateName is required"));
  } else {
    for (const why of check(m.name)) out.push(invalidValue("metadata.name", m.name, why));
  }
  if (info.namespaced && m.namespace) {
    for (const why of checkLabel(m.namespace)) out.push(invalidValue("metadata.namespace", m.namespace, why));
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    for (const why of checkQualifiedKey(k)) out.push(invalidValue("metadata.labels", k, why));
    if (typeof v !== "string" || v.length > 63 || !labelValueRe.test(v)) {
      out.push(
        invalidValue(
          "metadata.labels",
          v,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
      );
    }
  }
  for (const k of Object.keys(m.annotations ?? {})) {
    for (const why of checkQualifiedKey(k.toLowerCase())) out.push(invalidValue("metadata.annotations", k, why));
  }
  let annSize = 0;
  for (const [k, v] of Object.entries(m.annotations ?? {})) annSize += k.length + String(v).length;
  if (annSize > 256 * 1024) {
    out.push({
      reason: "FieldValueTooLong",
      message: "Too long: must have at most 262144 bytes",
      field: "metadata.annotations",
    });
  }
  for (const [i, r] of (m.ownerReferences ?? []).entries()) {
    if (!r.apiVersion)
      out.push(invalidValue(`metadata.ownerReferences[${i}].apiVersion`, "", "version must not be empty"));
    if (!r.kind) out.push(invalidValue(`metadata.ownerReferences[${i}].kind`, "", "kind must not be empty"));
    if (!r.name) out.push(invalidValue(`metadata.ownerReferences[${i}].name`, "", "name must not be empty"));
    if (!r.uid) out.push(invalidValue(`metadata.ownerReferences[${i}].uid`, "", "uid must not be empty"));
  }
  if ((m.ownerReferences ?? []).filter((r) => r.controller === true).length > 1) {
    out.push(invalidValue("metadata.ownerReferences", "", "Only one reference can have Controller set to true"));
  }
}

const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isRecord) : []);
const rec = (v: unknown): Obj => (isRecord(v) ? v : {});

function validPort(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function validateContainers(path: string, list: unknown, requiredList: boolean, out: Cause[]): void {
  const cs = arr(list);
  if (requiredList && cs.length === 0) {
    out.push(required(path));
    return;
  }
  const seen = new Set<string>();
  cs.forEach((c, i) => {
    const p = `${path}[${i}]`;
    if (typeof c.name !== "string" || c.name === "") out.push(required(`${p}.name`));
    else {
      for (const why of checkLabel(c.name)) out.push(invalidValue(`${p}.name`, c.name, why));
      if (seen.has(c.name)) out.push(duplicate(`${p}.name`, c.name));
      seen.add(c.name);
    }
    if (typeof c.image !== "string" || c.image.trim() === "") out.push(required(`${p}.image`));
    arr(c.ports).forEach((port, j) => {
      if (!validPort(port.containerPort)) {
        out.push(
          invalidValue(`${p}.ports[${j}].containerPort`, port.containerPort, "must be between 1 and 65535, inclusive"),
        );
      }
      if (port.protocol !== undefined && !["TCP", "UDP", "SCTP"].includes(String(port.protocol))) {
        out.push(notSupported(`${p}.ports[${j}].protocol`, port.protocol, ["SCTP", "TCP", "UDP"]));
      }
    });
    arr(c.env).forEach((e, j) => {
      if (typeof e.name !== "string" || e.name === "") out.push(required(`${p}.env[${j}].name`));
    });
    const mounts = new Set<string>();
    arr(c.volumeMounts).forEach((vm, j) => {
      if (typeof vm.name !== "string" || vm.name === "") out.push(required(`${p}.volumeMounts[${j}].name`));
      if (typeof vm.mountPath !== "string" || vm.mountPath === "")
        out.push(required(`${p}.volumeMounts[${j}].mountPath`));
      else if (mounts.has(vm.mountPath))
        out.push(invalidValue(`${p}.volumeMounts[${j}].mountPath`, vm.mountPath, "must be unique"));
      else mounts.add(vm.mountPath);
    });
  });
}

function validatePodSpec(path: string, spec: Obj, out: Cause[], template: boolean): void {
  validateContainers(`${path}.containers`, spec.containers, true, out);
  validateContainers(`${path}.initContainers`, spec.initContainers, false, out);
  const policies = template ? ["Always"] : ["Always", "OnFailure", "Never"];
  if (spec.restartPolicy !== undefined && !policies.includes(String(spec.restartPolicy))) {
    out.push(notSupported(`${path}.restartPolicy`, spec.restartPolicy, policies));
  }
  if (
    spec.dnsPolicy !== undefined &&
    !["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"].includes(String(spec.dnsPolicy))
  ) {
    out.push(
      notSupported(`${path}.dnsPolicy`, spec.dnsPolicy, ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]),
    );
  }
  const names = new Set<string>();
  arr(spec.volumes).forEach((v, i) => {
    if (typeof v.name !== "string" || v.name === "") out.push(required(`${path}.volumes[${i}].name`));
    else if (names.has(v.name)) out.push(duplicate(`${path}.volumes[${i}].name`, v.name));
    else names.add(v.name);
  });
  const all = [...arr(spec.containers), ...arr(spec.initContainers)];
  all.forEach((c) => {
    arr(c.volumeMounts).forEach((vm) => {
      if (typeof vm.name === "string" && vm.name !== "" && !names.has(vm.name)) {
        out.push({
          reason: "FieldValueNotFound",
          message: `Not found: ${q(vm.name)}`,
          field: `${path}.containers[${all.indexOf(c)}].volumeMounts.name`,
        });
      }
    });
  });
}

function validateWorkload(info: ResourceInfo, o: KubeObject, old: KubeObject | undefined, out: Cause[]): void {
  const spec = rec(o.spec);
  const sel = spec.selector;
  if (!isRecord(sel)) out.push(required("spec.selector"));
  else if (Object.keys(rec(sel.matchLabels)).length === 0 && arr(sel.matchExpressions).length === 0) {
    out.push(invalidValue("spec.selector", "", "empty selector is invalid for deployment"));
  }
  if (
    spec.replicas !== undefined &&
    !(typeof spec.replicas === "number" && Number.isInteger(spec.replicas) && spec.replicas >= 0)
  ) {
    out.push(invalidValue("spec.replicas", spec.replicas, "must be greater than or equal to 0"));
  }
  const tpl = rec(spec.template);
  const labels = rec(rec(tpl.metadata).labels) as Record<string, string>;
  if (isRecord(sel) && !matchLabelSelector(sel as LabelSelector, labels)) {
    out.push(invalidValue("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"));
  }
  validatePodSpec("spec.template.spec", rec(tpl.spec), out, true);
  if (old && !jsonEqual(rec(old.spec).selector, sel)) {
    out.push(immutable("spec.selector", sel));
  }
  void info;
}

const serviceTypes = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

function validateService(o: KubeObject, old: KubeObject | undefined, out: Cause[]): void {
  const spec = rec(o.spec);
  const type = spec.type ?? "ClusterIP";
  if (!serviceTypes.includes(String(type))) out.push(notSupported("spec.type", type, serviceTypes));
  const ports = arr(spec.ports);
  const headless = spec.clusterIP === "None";
  if (type === "ExternalName") {
    if (typeof spec.externalName !== "string" || spec.externalName === "") out.push(required("spec.externalName"));
  } else if (ports.length === 0 && !headless) {
    out.push(required("spec.ports"));
  }
  const names = new Set<string>();
  ports.forEach((p, i) => {
    if (ports.length > 1 && (typeof p.name !== "string" || p.name === "")) out.push(required(`spec.ports[${i}].name`));
    if (typeof p.name === "string" && p.name !== "") {
      if (names.has(p.name)) out.push(duplicate(`spec.ports[${i}].name`, p.name));
      names.add(p.name);
      for (const why of checkLabel(p.name)) out.push(invalidValue(`spec.ports[${i}].name`, p.name, why));
    }
    if (!validPort(p.port))
      out.push(invalidValue(`spec.ports[${i}].port`, p.port, "must be between 1 and 65535, inclusive"));
    if (p.protocol !== undefined && !["TCP", "UDP", "SCTP"].includes(String(p.protocol))) {
      out.push(notSupported(`spec.ports[${i}].protocol`, p.protocol, ["SCTP", "TCP", "UDP"]));
    }
    const tp = p.targetPort;
    if (typeof tp === "number" && !validPort(tp)) {
      out.push(invalidValue(`spec.ports[${i}].targetPort`, tp, "must be between 1 and 65535, inclusive"));
    }
  });
  if (old) {
    const oldSpec = rec(old.spec);
    const oldIp = oldSpec.clusterIP;
    if (
      oldIp !== undefined &&
      oldIp !== "" &&
      spec.clusterIP !== oldIp &&
      oldSpec.type !== "ExternalName" &&
      type !== "ExternalName"
    ) {
      out.push(invalidValue("spec.clusterIPs[0]", spec.clusterIP ?? "", "may not change once set"));
    }
  }
}

function validateCrd(o: KubeObject, old: KubeObject | undefined, out: Cause[]): void {
  const spec = rec(o.spec);
  const names = rec(spec.names);
  if (typeof spec.group !== "string" || spec.group === "") out.push(required("spec.group"));
  else if (!spec.group.includes("."))
    out.push(invalidValue("spec.group", spec.group, "should be a domain with at least one dot"));
  if (typeof names.plural !== "string" || names.plural === "") out.push(required("spec.names.plural"));
  if (typeof names.kind !== "string" || names.kind === "") out.push(required("spec.names.kind"));
  if (o.metadata.name && typeof names.plural === "string" && typeof spec.group === "string") {
    if (o.metadata.name !== `${names.plural}.${spec.group}`) {
      out.push(invalidValue("metadata.name", o.metadata.name, 'must be spec.names.plural+"."+spec.group'));
    }
  }
  if (spec.scope !== "Namespaced" && spec.scope !== "Cluster") {
    out.push(notSupported("spec.scope", spec.scope ?? "", ["Cluster", "Namespaced"]));
  }
  const versions = arr(spec.versions);
  if (versions.length === 0)
    out.push(required("spec.versions", "must have exactly one version marked as storage version"));
  else if (versions.filter((v) => v.storage === true).length !== 1) {
    out.push(invalidValue("spec.versions", "", "must have exactly one version marked as storage version"));
  }
  if (old && rec(old.spec).scope !== spec.scope) out.push(immutable("spec.scope", spec.scope));
}

function validateRbac(o: KubeObject, old: KubeObject | undefined, out: Cause[]): void {
  const ref = rec((o as Obj).roleRef);
  if (typeof ref.kind !== "string" || ref.kind === "") out.push(required("roleRef.kind"));
  if (typeof ref.name !== "string" || ref.name === "") out.push(required("roleRef.name"));
  if (old && !jsonEqual((old as Obj).roleRef, (o as Obj).roleRef)) {
    out.push(invalidValue("roleRef", (o as Obj).roleRef, "cannot change roleRef"));
  }
  arr((o as Obj).subjects).forEach((s, i) => {
    if (typeof s.name !== "string" || s.name === "") out.push(required(`subjects[${i}].name`));
    if (!["ServiceAccount", "User", "Group"].includes(String(s.kind))) {
      out.push(notSupported(`subjects[${i}].kind`, s.kind ?? "", ["Group", "ServiceAccount", "User"]));
    }
  });
}

/** Validates `o` (with `old` on update); returns the causes of a 422, empty when valid. */
export function validateObject(info: ResourceInfo, o: KubeObject, old: KubeObject | undefined): Cause[] {
  const out: Cause[] = [];
  validateMeta(info, o, out);
  if (info.crd !== undefined) out.push(...crValidate(info.schema, o));
  if (old && info.crd === undefined) {
    // Names cannot change through an update; the URL decides which object is written.
  }
  switch (`${info.group}/${info.kind}`) {
    case "/Pod": {
      const spec = rec(o.spec);
      validatePodSpec("spec", spec, out, false);
      if (old) {
        // Most of a pod's spec is fixed once created; image, activeDeadlineSeconds and tolerations (additions) may change.
        const strip = (s: Obj): Obj => {
          const c = structuredClone(s);
          for (const x of [...arr(c.containers), ...arr(c.initContainers)]) delete x.image;
          delete c.activeDeadlineSeconds;
          delete c.tolerations;
          delete c.terminationGracePeriodSeconds;
          return c;
        };
        const oldSpec = rec(old.spec);
        // Binding a pod (nodeName from empty to a node) is the one spec change the scheduler makes.
        const oldForCompare = oldSpec.nodeName ? oldSpec : { ...oldSpec, nodeName: spec.nodeName };
        if (!jsonEqual(strip(spec), strip(oldForCompare))) {
          out.push({
            reason: "FieldValueForbidden",
            message:
              "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            field: "spec",
          });
        }
      }
      break;
    }
    case "/Service":
      validateService(o, old, out);
      break;
    case "apps/Deployment":
    case "apps/ReplicaSet":
      validateWorkload(info, o, old, out);
      break;
    case "/Secret":
      if (old && (old as Obj).type !== (o as Obj).type) out.push(immutable("type", (o as Obj).type));
      break;
    case "discovery.k8s.io/EndpointSlice": {
      const t = (o as Obj).addressType;
      if (!["IPv4", "IPv6", "FQDN"].includes(String(t)))
        out.push(notSupported("addressType", t ?? "", ["FQDN", "IPv4", "IPv6"]));
      if (old && (old as Obj).addressType !== t) out.push(immutable("addressType", t));
      break;
    }
    case "rbac.authorization.k8s.io/RoleBinding":
    case "rbac.authorization.k8s.io/ClusterRoleBinding":
      validateRbac(o, old, out);
      break;
    case "apiextensions.k8s.io/CustomResourceDefinition":
      validateCrd(o, old, out);
      break;
    case "coordination.k8s.io/Lease":
      break;
  }
  return out;
}
