/**
 * The slice of the Pod schema the injector reads and writes. Fields it does not know are
 * kept as they are (objects are copied, never rebuilt), so any valid pod passes through whole.
 */

export interface ObjectMetaLike {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; controller?: boolean }[];
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { apiVersion?: string; fieldPath: string };
    resourceFieldRef?: { resource: string; divisor?: string };
  };
}

export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: string;
  [field: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  [field: string]: unknown;
}

export interface Volume {
  name: string;
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  serviceAccountName?: string;
  [field: string]: unknown;
}

/** A Pod as JSON. `metadata` may be absent in a template; the injector then creates it. */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMetaLike;
  spec: PodSpec;
  [field: string]: unknown;
}
