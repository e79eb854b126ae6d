/**
 * Where istiod's CA key lives, in Istio's order: the plug-in `cacerts` (mounted directory or
 * Secret), else the self-signed root kept in Secret `istio-ca-secret`, else a new self-signed
 * root written to that Secret (first writer wins when several istiods start at once).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { IsthmusError, type Logger, silentLogger } from "../base/index.js";
import { CertificateAuthority } from "./authority.js";
import { type CaKubeClient, httpStatusOf, type KubeObjectLike, Refs, secretText } from "./kube-api.js";
import { type CaFiles, createRootCa } from "./pki.js";

export const CACERTS_SECRET = "cacerts";
export const SELF_SIGNED_SECRET = "istio-ca-secret";
const FILE_NAMES = ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"] as const;

/** Thrown when a plug-in CA is present but unusable; the message names where and every problem. */
export class CaConfigError extends IsthmusError {
  constructor(where: string, reasons: readonly string[]) {
    super(
      "ISTHMUS_ERR_CA_CONFIG",
      `the CA in ${where} cannot be used:\n  ${reasons.join("\n  ")}\n` +
        `Recreate it with \`isthmus x ca create-intermediate --cluster <name>\` (see the guide's "before you begin").`,
    );
  }
}

export interface LoadCaOptions {
  readonly client: CaKubeClient;
  /** istiod's namespace; `istio-system`. */
  readonly namespace?: string;
  /** Where the `cacerts` Secret is mounted in istiod's pod (`/etc/cacerts`); checked first when given. */
  readonly dir?: string;
  readonly log?: Logger;
}

function filesFromSecret(secret: KubeObjectLike): CaFiles | undefined {
  const get = (k: string) => secretText(secret, k);
  const cert = get("ca-cert.pem") ?? get("tls.crt");
  const key = get("ca-key.pem") ?? get("tls.key");
  if (cert === undefined || key === undefined) return undefined;
  return {
    "ca-cert.pem": cert,
    "ca-key.pem": key,
    "root-cert.pem": get("root-cert.pem") ?? get("ca.crt") ?? "",
    "cert-chain.pem": get("cert-chain.pem") ?? "",
  };
}

function check(files: CaFiles, source: CertificateAuthority["source"], where: string): CertificateAuthority {
  const result = CertificateAuthority.fromFiles(files, source);
  if (!result.ok) throw new CaConfigError(where, result.reasons);
  return result.value;
}

async function getSecret(client: CaKubeClient, namespace: string, name: string): Promise<KubeObjectLike | undefined> {
  try {
    return await client.get(Refs.secrets, namespace, name);
  } catch (err) {
    if (httpStatusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Finds or makes the CA as istiod does at start-up. Throws CaConfigError for a broken plug-in CA. */
export async function loadOrCreateCa(opts: LoadCaOptions): Promise<CertificateAuthority> {
  const namespace = opts.namespace ?? "istio-system";
  const log = opts.log ?? silentLogger;
  if (opts.dir !== undefined && existsSync(join(opts.dir, "ca-cert.pem"))) {
    const read = (f: string) =>
      existsSync(join(opts.dir ?? "", f)) ? readFileSync(join(opts.dir ?? "", f), "utf8") : "";
    const files = Object.fromEntries(FILE_NAMES.map((f) => [f, read(f)])) as unknown as CaFiles;
    log.info("using the plug-in CA from a mounted directory", { dir: opts.dir });
    return check(files, "cacerts-dir", opts.dir);
  }
  const plugin = await getSecret(opts.client, namespace, CACERTS_SECRET);
  if (plugin !== undefined) {
    const files = filesFromSecret(plugin);
    const where = `Secret ${namespace}/${CACERTS_SECRET}`;
    if (files === undefined) throw new CaConfigError(where, ["it has no ca-cert.pem and ca-key.pem keys"]);
    log.info("using the plug-in CA", { secret: where });
    return check(files, "cacerts", where);
  }
  const where = `Secret ${namespace}/${SELF_SIGNED_SECRET}`;
  const existing = await getSecret(opts.client, namespace, SELF_SIGNED_SECRET);
  if (existing !== undefined) {
    const files = filesFromSecret(existing);
    if (files === undefined) throw new CaConfigError(where, ["it has no ca-cert.pem and ca-key.pem keys"]);
    log.info("using the self-signed root", { secret: where });
    return check(files, "istio-ca-secret", where);
  }
  const root = await createRootCa({ organization: "cluster.local", commonName: "Isthmus Root CA" });
  const secret: KubeObjectLike = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: SELF_SIGNED_SECRET, namespace },
    type: "istio.io/ca-root",
    data: {
      "ca-cert.pem": Buffer.from(root.certPem).toString("base64"),
      "ca-key.pem": Buffer.from(root.keyPem).toString("base64"),
      "cert-chain.pem": "",
      "root-cert.pem": "",
    },
  };
  try {
    await opts.client.create(Refs.secrets, secret);
    log.info("generated a self-signed root; no cacerts Secret was found", { secret: where });
  } catch (err) {
    // Another istiod wrote it first: use theirs, so the cluster keeps one root.
    if (httpStatusOf(err) !== 409) throw err;
    const theirs = await getSecret(opts.client, namespace, SELF_SIGNED_SECRET);
    const files = theirs && filesFromSecret(theirs);
    if (!files) throw new CaConfigError(where, ["it was created concurrently but cannot be read back"]);
    return check(files, "istio-ca-secret", where);
  }
  return check(
    { "ca-cert.pem": root.certPem, "ca-key.pem": root.keyPem, "cert-chain.pem": "", "root-cert.pem": "" },
    "generated",
    where,
  );
}
