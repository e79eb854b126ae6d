/**
 * The local cluster's PKI: a CA, the API server's serving certificate, the service-account
 * token signing key and the admin bearer token. Created once per cluster and kept in its
 * state folder, so `cluster stop`/`start` keeps kubeconfigs and issued tokens valid.
 */
import "reflect-metadata";
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { IsthmusError } from "../../base/index.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** Names every in-cluster client uses for the API server; always in the serving certificate. */
export const kubernetesServiceDnsNames = [
  "localhost",
  "kubernetes",
  "kubernetes.default",
  "kubernetes.default.svc",
  "kubernetes.default.svc.cluster.local",
] as const;

export interface ClusterPkiOptions {
  /** The local cluster's name; appears in the CA's subject so two clusters' CAs are told apart. */
  clusterName: string;
  /** Addresses the API server is reached at (gateway address, the `kubernetes` ClusterIP); 127.0.0.1 is always added. */
  apiServerIps: string[];
  /** Extra DNS names for the serving certificate (the kubernetes.default names are always added). */
  apiServerDnsNames: string[];
  /** Certificate lifetime; default 10 years, since a local cluster has no rotation. */
  validityDays?: number;
}

/** All of one cluster's secrets, PEM encoded. Never log any field but `clusterName`. */
export interface ClusterPki {
  clusterName: string;
  caCertPem: string;
  caKeyPem: string;
  servingCertPem: string;
  servingKeyPem: string;
  /** PKCS#8 private key that signs service-account tokens (RSA 2048, RS256). */
  serviceAccountKeyPem: string;
  /** SPKI public key matching serviceAccountKeyPem, for verifiers outside this process. */
  serviceAccountPublicKeyPem: string;
  /** The admin's bearer token (32 random bytes, base64url); maps to kubernetes-admin in system:masters. */
  adminToken: string;
}

const ecKeyAlgorithm = { name: "ECDSA", namedCurve: "P-256" } as const;
const ecSigning = { name: "ECDSA", hash: "SHA-256" } as const;

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

async function newEcKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ecKeyAlgorithm, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

function serial(): string {
  // Positive, 16 bytes: the high bit cleared so DER does not read it as negative.
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString("hex");
}

async function issueServingCert(p: {
  caCert: x509.X509Certificate;
  caKey: CryptoKey;
  caPublicKey: CryptoKey;
  apiServerIps: string[];
  apiServerDnsNames: string[];
  notBefore: Date;
  notAfter: Date;
}): Promise<{ certPem: string; keyPem: string }> {
  const servingKeys = await newEcKeys();
  const ips = [...new Set(["127.0.0.1", ...p.apiServerIps])];
  const dnsNames = [...new Set([...kubernetesServiceDnsNames, ...p.apiServerDnsNames])];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=kube-apiserver",
    issuer: p.caCert.subject,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    publicKey: servingKeys.publicKey,
    signingKey: p.caKey,
    signingAlgorithm: ecSigning,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ips.map((value) => ({ type: "ip" as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(servingKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(p.caPublicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await privateKeyPem(servingKeys.privateKey) };
}

/**
 * Returns `pki` unchanged when its serving certificate names every given address and DNS name
 * and is valid for at least 30 more days; otherwise the same PKI with a new serving certificate
 * from the same CA (kubeconfigs and tokens stay valid). For a cluster whose address changed.
 */
export async function ensureServingCert(
  pki: ClusterPki,
  opts: { apiServerIps: string[]; apiServerDnsNames: string[]; validityDays?: number },
): Promise<{ pki: ClusterPki; reissued: boolean }> {
  const current = new X509Certificate(pki.servingCertPem);
  const covers =
    [...new Set(["127.0.0.1", ...opts.apiServerIps])].every((ip) => current.checkIP(ip) !== undefined) &&
    [...kubernetesServiceDnsNames, ...opts.apiServerDnsNames].every((dns) => current.checkHost(dns) !== undefined) &&
    Date.parse(current.validTo) - Date.now() > 30 * 86_400_000;
  if (covers) return { pki, reissued: false };
  const caCert = new x509.X509Certificate(pki.caCertPem);
  const caKey = await webcrypto.subtle.importKey(
    "pkcs8",
    createPrivateKey(pki.caKeyPem).export({ type: "pkcs8", format: "der" }),
    ecKeyAlgorithm,
    false,
    ["sign"],
  );
  const serving = await issueServingCert({
    caCert,
    caKey,
    caPublicKey: await caCert.publicKey.export(),
    apiServerIps: opts.apiServerIps,
    apiServerDnsNames: opts.apiServerDnsNames,
    notBefore: new Date(Date.now() - 5 * 60_000),
    notAfter: new Date(Math.min(Date.now() + (opts.validityDays ?? 3650) * 86_400_000, caCert.notAfter.getTime())),
  });
  return { pki: { ...pki, servingCertPem: serving.certPem, servingKeyPem: serving.keyPem }, reissued: true };
}

/** Creates a fresh PKI for one cluster (keys generated in memory; nothing is written). */
export async function createClusterPki(opts: ClusterPkiOptions): Promise<ClusterPki> {
  const days = opts.validityDays ?? 3650;
  // Backdated a little so a clock that differs by seconds between processes does not matter.
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(Date.now() + days * 86_400_000);

  const caKeys = await newEcKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=isthmus-${opts.clusterName}-ca, O=isthmus`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ecSigning,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serving = await issueServingCert({
    caCert,
    caKey: caKeys.privateKey,
    caPublicKey: caKeys.publicKey,
    apiServerIps: opts.apiServerIps,
    apiServerDnsNames: opts.apiServerDnsNames,
    notBefore,
    notAfter,
  });

  const saKeys = (await webcrypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;

  return {
    clusterName: opts.clusterName,
    caCertPem: caCert.toString("pem"),
    caKeyPem: await privateKeyPem(caKeys.privateKey),
    servingCertPem: serving.certPem,
    servingKeyPem: serving.keyPem,
    serviceAccountKeyPem: await privateKeyPem(saKeys.privateKey),
    serviceAccountPublicKeyPem: toPem(await webcrypto.subtle.exportKey("spki", saKeys.publicKey), "PUBLIC KEY"),
    adminToken: randomBytes(32).toString("base64url"),
  };
}

/** Thrown when a cluster's PKI folder is missing files or holds ones that do not fit together. */
export class PkiError extends IsthmusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ISTHMUS_ERR_PKI", message, options);
  }
}

const files = {
  caCertPem: "ca.crt",
  caKeyPem: "ca.key",
  servingCertPem: "apiserver.crt",
  servingKeyPem: "apiserver.key",
  serviceAccountKeyPem: "sa.key",
  serviceAccountPublicKeyPem: "sa.pub",
  adminToken: "admin.token",
  clusterName: "cluster-name",
} as const satisfies Record<keyof ClusterPki, string>;

/** Writes the PKI into `dir` (created 0700), one file per field, each 0600, each replaced atomically. */
export async function savePki(dir: string, pki: ClusterPki): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [field, file] of Object.entries(files) as [keyof ClusterPki, string][]) {
    const path = join(dir, file);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, pki[field], { mode: 0o600 });
    await rename(tmp, path);
  }
}

/**
 * Reads a PKI written by savePki and checks that it fits together (serving certificate issued
 * by the CA, keys matching). Rejects with PkiError naming the folder and the bad file.
 */
export async function loadPki(dir: string): Promise<ClusterPki> {
  const out: Partial<Record<keyof ClusterPki, string>> = {};
  for (const [field, file] of Object.entries(files) as [keyof ClusterPki, string][]) {
    try {
      out[field] = await readFile(join(dir, file), "utf8");
    } catch (err) {
      throw new PkiError(
        `cannot read ${join(dir, file)}: ${(err as Error).message}; the cluster's PKI is incomplete, recreate the cluster`,
        { cause: err },
      );
    }
  }
  const pki = out as ClusterPki;
  try {
    const ca = new X509Certificate(pki.caCertPem);
    const serving = new X509Certificate(pki.servingCertPem);
    if (!serving.checkIssued(ca) || !serving.verify(ca.publicKey))
      throw new Error("apiserver.crt is not issued by ca.crt");
    if (!ca.checkPrivateKey(createPrivateKey(pki.caKeyPem))) throw new Error("ca.key does not match ca.crt");
    if (!serving.checkPrivateKey(createPrivateKey(pki.servingKeyPem))) {
      throw new Error("apiserver.key does not match apiserver.crt");
    }
    const derivedPub = createPublicKey(createPrivateKey(pki.serviceAccountKeyPem)).export({
      type: "spki",
      format: "pem",
    });
    if (derivedPub !== createPublicKey(pki.serviceAccountPublicKeyPem).export({ type: "spki", format: "pem" })) {
      throw new Error("sa.pub does not match sa.key");
    }
  } catch (err) {
    throw new PkiError(`the PKI in ${dir} is inconsistent: ${(err as Error).message}; recreate the cluster`, {
      cause: err,
    });
  }
  return pki;
}
