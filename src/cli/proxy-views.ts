/**
 * How the proxy commands read a sidecar's and a control plane's state. A sidecar's admin
 * port (15000) answers only on the pod's loopback, so it is read by exec'ing curl in the
 * pod's istio-proxy container through the API server (as istioctl reaches pilot-agent);
 * istiod's /debug pages are read on its pod IP, as remote-clusters does.
 */
import { Writable } from "node:stream";
import { Exec, type KubeConfig } from "@kubernetes/client-node";
import { errorMessage } from "../base/index.js";

/** Splits `<pod>.<namespace>` (namespace defaults to `defaultNamespace`). */
export function podRef(arg: string, defaultNamespace = "default"): { pod: string; namespace: string } {
  const i = arg.indexOf(".");
  return i < 0 ? { pod: arg, namespace: defaultNamespace } : { pod: arg.slice(0, i), namespace: arg.slice(i + 1) };
}

/** Runs `command` in a pod's container and returns stdout; rejects with stderr or the exit status. */
export async function execInPod(
  kc: KubeConfig,
  ref: { pod: string; namespace: string },
  container: string,
  command: string[],
): Promise<string> {
  let out = "";
  let err = "";
  const sink = (into: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        into(chunk.toString());
        cb();
      },
    });
  return new Promise((resolve, reject) => {
    new Exec(kc)
      .exec(
        ref.namespace,
        ref.pod,
        container,
        command,
        sink((s) => {
          out += s;
        }),
        sink((s) => {
          err += s;
        }),
        null,
        false,
        (status) => {
          if (status.status === "Success") resolve(out);
          else
            reject(
              new Error(
                `${command.join(" ")} in ${ref.pod}.${ref.namespace}/${container} failed: ${err.trim() || status.message || status.reason || "unknown error"}`,
              ),
            );
        },
      )
      .catch((e: unknown) => reject(new Error(`cannot exec in pod ${ref.pod}.${ref.namespace}: ${errorMessage(e)}`)));
  });
}

/** GETs a path of the sidecar's admin port inside the pod. */
export async function sidecarAdmin(
  kc: KubeConfig,
  ref: { pod: string; namespace: string },
  path: string,
): Promise<string> {
  return execInPod(kc, ref, "istio-proxy", ["curl", "-sS", "--max-time", "5", `http://127.0.0.1:15000${path}`]);
}
