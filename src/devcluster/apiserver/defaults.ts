/**
 * Defaulting as kube-apiserver does it (scheme defaults plus the built-in admission plugins
 * that fill fields: ServiceAccount, DefaultTolerationSeconds, Priority), per kind. Mutates in
 * place; idempotent, so it can run again after a mutating webhook changed the object.
 */
import type { KubeObject } from "../api/types.js";
import { crUnknownFields } from "./crschema.js";
import type { ClusterIpAllocator } from "./ipalloc.js";
import { generateName, isRecord } from "./meta.js";
import type { ResourceInfo } from "./registry.js";

/** What defaulting may consult besides the object. */
export interface DefaultsContext {
  ips: ClusterIpAllocator;
}

type Obj = Record<string, unknown>;

function obj(parent: Obj, key: string): Obj {
  const v = parent[key];
  if (isRecord(v)) return v;
  const o: Obj = {};
  parent[key] = o;
  return o;
}

function arr(parent: Obj, key: string): Obj[] {
  const v = parent[key];
  return Array.isArray(v) ? v.filter(isRecord) : [];
}

function setDefault(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null) o[key] = value;
}

const kindKey = (info: ResourceInfo): string => `${info.group}/${info.kind}`;

/** Resets status on create, where Kubernetes does (the status subresource owns it). */
export function clearStatusOnCreate(info: ResourceInfo, o: KubeObject): void {
  switch (kindKey(info)) {
    case "/Pod":
      o.status = { phase: "Pending", qosClass: qosClass(isRecord(o.spec) ? o.spec : {}) };
      return;
    case "/Service":
      o.status = { loadBalancer: {} };
      return;
    case "/Namespace":
      o.status = { phase: "Active" };
      return;
    case "apps/Deployment":
    case "apps/ReplicaSet":
      delete o.status;
      return;
    case "apiextensions.k8s.io/CustomResourceDefinition":
      return;
  }
  if (info.crd !== undefined && info.subresources.includes("status")) delete o.status;
}

/** Applies the kind's defaults; `old` is the stored object on update (undefined on create). */
export function applyDefaults(
  info: ResourceInfo,
  o: KubeObject,
  ctx: DefaultsContext,
  old: KubeObject | undefined,
): void {
  const root = o as unknown as Obj;
  if (info.crd !== undefined) {
    crUnknownFields(info.schema, o, { prune: false, defaults: true });
    return;
  }
  switch (kindKey(info)) {
    case "/Pod": {
      defaultPodSpec(obj(root, "spec"));
      const spec = obj(root, "spec");
      if (old === undefined) {
        setDefault(spec, "priority", 0);
        setDefault(spec, "preemptionPolicy", "PreemptLowerPriority");
        if (!Array.isArray(spec.tolerations)) spec.tolerations = [];
        const tol = spec.tolerations as Obj[];
        for (const key of ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]) {
          if (!tol.some((t) => t.key === key)) {
            tol.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 });
          }
        }
      }
      return;
    }
    case "/Service":
      defaultService(root, ctx, old);
      return;
    case "/Namespace": {
      const name = o.metadata.name ?? "";
      if (name) o.metadata.labels = { ...(o.metadata.labels ?? {}), "kubernetes.io/metadata.name": name };
      const spec = obj(root, "spec");
      if (old === undefined) setDefault(spec, "finalizers", ["kubernetes"]);
      setDefault(obj(root, "status"), "phase", "Active");
      return;
    }
    case "/Secret": {
      setDefault(root, "type", "Opaque");
      // stringData is write-only, as in kube-apiserver: merged into data (base64), never stored.
      const stringData = root.stringData;
      if (stringData !== null && typeof stringData === "object" && !Array.isArray(stringData)) {
        const data = obj(root, "data");
        for (const [k, v] of Object.entries(stringData as Record<string, unknown>)) {
          data[k] = Buffer.from(String(v), "utf8").toString("base64");
        }
      }
      delete root.stringData;
      return;
    }
    case "/Endpoints":
      for (const s of arr(root, "subsets")) for (const p of arr(s, "ports")) setDefault(p, "protocol", "TCP");
      return;
    case "discovery.k8s.io/EndpointSlice":
      for (const p of arr(root, "ports")) setDefault(p, "protocol", "TCP");
      return;
    case "apps/Deployment": {
      const spec = obj(root, "spec");
      setDefault(spec, "replicas", 1);
      const strategy = obj(spec, "strategy");
      setDefault(strategy, "type", "RollingUpdate");
      if (strategy.type === "RollingUpdate") {
        const ru = obj(strategy, "rollingUpdate");
        setDefault(ru, "maxUnavailable", "25%");
        setDefault(ru, "maxSurge", "25%");
      }
      setDefault(spec, "revisionHistoryLimit", 10);
      setDefault(spec, "progressDeadlineSeconds", 600);
      defaultTemplate(spec);
      return;
    }
    case "apps/ReplicaSet": {
      const spec = obj(root, "spec");
      setDefault(spec, "replicas", 1);
      defaultTemplate(spec);
      return;
    }
    case "rbac.authorization.k8s.io/RoleBinding":
    case "rbac.authorization.k8s.io/ClusterRoleBinding":
      for (const s of arr(root, "subjects")) {
        if (s.kind === "ServiceAccount") setDefault(s, "apiGroup", "");
        else setDefault(s, "apiGroup", "rbac.authorization.k8s.io");
      }
      return;
    case "admissionregistration.k8s.io/MutatingWebhookConfiguration":
    case "admissionregistration.k8s.io/ValidatingWebhookConfiguration":
      for (const w of arr(root, "webhooks")) {
        setDefault(w, "failurePolicy", "Fail");
        setDefault(w, "matchPolicy", "Equivalent");
        setDefault(w, "namespaceSelector", {});
        setDefault(w, "objectSelector", {});
        setDefault(w, "timeoutSeconds", 10);
        if (info.kind === "MutatingWebhookConfiguration") setDefault(w, "reinvocationPolicy", "Never");
        for (const r of arr(w, "rules")) setDefault(r, "scope", "*");
        const svc = isRecord(w.clientConfig) ? w.clientConfig.service : undefined;
        if (isRecord(svc)) setDefault(svc, "port", 443);
      }
      return;
    case "apiextensions.k8s.io/CustomResourceDefinition":
      defaultCrd(root);
      return;
  }
}

function defaultTemplate(spec: Obj): void {
  const tpl = obj(spec, "template");
  const meta = obj(tpl, "metadata");
  void meta;
  defaultPodSpec(obj(tpl, "spec"));
}

function imagePullPolicy(image: unknown): string {
  if (typeof image !== "string") return "IfNotPresent";
  if (image.includes("@")) return "IfNotPresent";
  const lastSlash = image.lastIndexOf("/");
  const tagSep = image.indexOf(":", lastSlash + 1);
  const tag = tagSep >= 0 ? image.slice(tagSep + 1) : "";
  return tag === "" || tag === "latest" ? "Always" : "IfNotPresent";
}

function defaultContainer(c: Obj): void {
  setDefault(c, "terminationMessagePath", "/dev/termination-log");
  setDefault(c, "terminationMessagePolicy", "File");
  setDefault(c, "imagePullPolicy", imagePullPolicy(c.image));
  setDefault(c, "resources", {});
  for (const p of arr(c, "ports")) setDefault(p, "protocol", "TCP");
  for (const e of arr(c, "env")) {
    const vf = e.valueFrom;
    if (isRecord(vf) && isRecord(vf.fieldRef)) setDefault(vf.fieldRef, "apiVersion", "v1");
  }
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    const p = c[probe];
    if (!isRecord(p)) continue;
    setDefault(p, "timeoutSeconds", 1);
    setDefault(p, "periodSeconds", 10);
    setDefault(p, "successThreshold", 1);
    setDefault(p, "failureThreshold", 3);
    if (isRecord(p.httpGet)) setDefault(p.httpGet, "scheme", "HTTP");
    if (isRecord(p.httpGet)) setDefault(p.httpGet, "path", "/");
  }
}

/** Pod spec defaults shared by pods and pod templates. */
export function defaultPodSpec(spec: Obj): void {
  setDefault(spec, "restartPolicy", "Always");
  setDefault(spec, "terminationGracePeriodSeconds", 30);
  setDefault(spec, "dnsPolicy", "ClusterFirst");
  setDefault(spec, "securityContext", {});
  setDefault(spec, "schedulerName", "default-scheduler");
  for (const c of [...arr(spec, "containers"), ...arr(spec, "initContainers")]) defaultContainer(c);
  for (const v of arr(spec, "volumes")) {
    if (isRecord(v.configMap)) setDefault(v.configMap, "defaultMode", 420);
    if (isRecord(v.secret)) setDefault(v.secret, "defaultMode", 420);
    if (isRecord(v.projected)) setDefault(v.projected, "defaultMode", 420);
    if (isRecord(v.downwardAPI)) setDefault(v.downwardAPI, "defaultMode", 420);
    if (isRecord(v.hostPath)) setDefault(v.hostPath, "type", "");
  }
}

const saMountPath = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The ServiceAccount admission plugin, on pod create: serviceAccountName "default", and unless
 * automountServiceAccountToken is false, a projected `kube-api-access-xxxxx` volume mounted in
 * every container at the service-account path. `saAutomount` is the ServiceAccount's own setting.
 */
export function admitServiceAccount(pod: KubeObject, saAutomount: boolean | undefined): void {
  const spec = obj(pod as unknown as Obj, "spec");
  setDefault(spec, "serviceAccountName", "default");
  spec.serviceAccount = spec.serviceAccountName;
  if (spec.automountServiceAccountToken === false) return;
  if (spec.automountServiceAccountToken === undefined && saAutomount === false) return;
  const containers = [...arr(spec, "initContainers"), ...arr(spec, "containers")];
  const volumes = arr(spec, "volumes");
  if (volumes.some((v) => typeof v.name === "string" && v.name.startsWith("kube-api-access-"))) return;
  let name = generateName("kube-api-access-");
  while (volumes.some((v) => v.name === name)) name = generateName("kube-api-access-");
  const needing = containers.filter((c) => !arr(c, "volumeMounts").some((m) => m.mountPath === saMountPath));
  if (needing.length === 0) return;
  spec.volumes = [
    ...volumes,
    {
      name,
      projected: {
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          {
            downwardAPI: {
              items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }],
            },
          },
        ],
        defaultMode: 420,
      },
    },
  ];
  for (const c of needing) {
    c.volumeMounts = [...arr(c, "volumeMounts"), { name, readOnly: true, mountPath: saMountPath }];
  }
}

function quantitiesSet(c: Obj, which: "requests" | "limits"): Obj {
  const r = isRecord(c.resources) ? c.resources[which] : undefined;
  return isRecord(r) ? r : {};
}

/** The pod's QoS class from its containers' requests and limits. */
export function qosClass(spec: Obj): string {
  const cs = [...arr(spec, "containers"), ...arr(spec, "initContainers")];
  let any = false;
  let guaranteed = cs.length > 0;
  for (const c of cs) {
    const req = quantitiesSet(c, "requests");
    const lim = quantitiesSet(c, "limits");
    for (const r of ["cpu", "memory"]) {
      if (req[r] !== undefined || lim[r] !== undefined) any = true;
      const rq = req[r] ?? lim[r];
      if (lim[r] === undefined || String(rq) !== String(lim[r])) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

function defaultService(root: Obj, ctx: DefaultsContext, old: KubeObject | undefined): void {
  const spec = obj(root, "spec");
  setDefault(spec, "type", "ClusterIP");
  if (spec.type === "ExternalName") return;
  setDefault(spec, "sessionAffinity", "None");
  for (const p of arr(spec, "ports")) {
    setDefault(p, "protocol", "TCP");
    setDefault(p, "targetPort", p.port);
  }
  const oldSpec = old && isRecord(old.spec) ? old.spec : undefined;
  if (spec.type === "NodePort" || spec.type === "LoadBalancer") {
    // A write that leaves nodePort out keeps the one allocated to the same port.
    const oldPorts = oldSpec ? arr(oldSpec, "ports") : [];
    for (const p of arr(spec, "ports")) {
      if (p.nodePort !== undefined && p.nodePort !== 0) continue;
      const was = oldPorts.find((o) => o.port === p.port && (o.protocol ?? "TCP") === p.protocol);
      if (was && typeof was.nodePort === "number") p.nodePort = was.nodePort;
    }
  } else {
    for (const p of arr(spec, "ports")) delete p.nodePort;
  }
  // Updates that leave clusterIP out (kubectl replace of a manifest) keep the allocated one.
  if (oldSpec && (spec.clusterIP === undefined || spec.clusterIP === "") && oldSpec.clusterIP !== undefined) {
    spec.clusterIP = oldSpec.clusterIP;
    if (oldSpec.clusterIPs !== undefined) spec.clusterIPs = oldSpec.clusterIPs;
  }
  if (typeof spec.clusterIP === "string" && spec.clusterIP !== "" && spec.clusterIPs === undefined) {
    spec.clusterIPs = [spec.clusterIP];
  }
  setDefault(spec, "ipFamilies", ["IPv4"]);
  setDefault(spec, "ipFamilyPolicy", "SingleStack");
  setDefault(spec, "internalTrafficPolicy", "Cluster");
  if (spec.type === "NodePort" || spec.type === "LoadBalancer") setDefault(spec, "externalTrafficPolicy", "Cluster");
  if (spec.type === "LoadBalancer") setDefault(spec, "allocateLoadBalancerNodePorts", true);
  void ctx;
}

function defaultCrd(root: Obj): void {
  const spec = obj(root, "spec");
  const names = obj(spec, "names");
  if (typeof names.kind === "string") {
    setDefault(names, "singular", names.kind.toLowerCase());
    setDefault(names, "listKind", `${names.kind}List`);
  }
  const conv = obj(spec, "conversion");
  setDefault(conv, "strategy", "None");
  const versions = arr(spec, "versions");
  const status = obj(root, "status");
  const now = `${new Date().toISOString().slice(0, 19)}Z`;
  status.acceptedNames = { ...names };
  const stored = new Set(Array.isArray(status.storedVersions) ? (status.storedVersions as string[]) : []);
  for (const v of versions) if (v.storage === true && typeof v.name === "string") stored.add(v.name);
  status.storedVersions = [...stored];
  const prev = Array.isArray(status.conditions) ? (status.conditions as Obj[]) : [];
  const cond = (type: string, reason: string, message: string): Obj => {
    const p = prev.find((c) => c.type === type);
    return {
      type,
      status: "True",
      lastTransitionTime: p && p.status === "True" ? p.lastTransitionTime : now,
      reason,
      message,
    };
  };
  status.conditions = [
    cond("NamesAccepted", "NoConflicts", "no conflicts found"),
    cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
  ];
}
