/**
 * Certificates and keys for the mesh CA: roots, per-cluster intermediates (the four files of
 * Istio's "plug in CA certificates"), workload leaves and serving certificates. Keys are
 * ECDSA P-256 made by node:crypto; certificates are built with @peculiar/x509.
 */
import "reflect-metadata";
import { createPrivateKey, X509Certificate as NodeX509, randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

type CryptoKeyPair = { publicKey: webcrypto.CryptoKey; privateKey: webcrypto.CryptoKey };

/** A certificate and its private key, both PEM. */
export interface KeyedCert {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Istio's plug-in CA files (`cacerts`): the signing certificate and key, the root, and the chain
 * from the signing certificate up to the root (`cert-chain.pem` = ca-cert + intermediates + root).
 */
export interface CaFiles {
  readonly "ca-cert.pem": string;
  readonly "ca-key.pem": string;
  readonly "root-cert.pem": string;
  readonly "cert-chain.pem": string;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function keyToPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** Imports a PKCS#8 or SEC1 ("EC PRIVATE KEY") PEM key for signing. Only P-256 keys are accepted. */
export async function importSigningKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  const pkcs8 = createPrivateKey(keyPem).export({ format: "der", type: "pkcs8" });
  return webcrypto.subtle.importKey("pkcs8", pkcs8, ALG, false, ["sign"]);
}

function serial(): string {
  // Positive 128-bit serial (high bit cleared so DER does not read it as negative).
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString("hex");
}

/** Splits a PEM bundle into its certificates, in order. */
export function splitPem(bundle: string): string[] {
  return [...bundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

export interface RootOptions {
  readonly commonName?: string;
  readonly organization?: string;
  readonly days?: number;
  readonly now?: Date;
}

/** A self-signed root CA (Istio's tools: O=Istio, CN=Root CA, 10 years). */
export async function createRootCa(opts: RootOptions = {}): Promise<KeyedCert> {
  const now = opts.now ?? new Date();
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=${opts.organization ?? "Istio"}, CN=${opts.commonName ?? "Root CA"}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (opts.days ?? 3650) * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: ensureNewline(cert.toString("pem")), keyPem: await keyToPem(keys.privateKey) };
}

export interface IntermediateOptions {
  /** The root (or a higher intermediate) that signs; its chain is `parentChainPem` or the root itself. */
  readonly parent: KeyedCert;
  /** `parent`'s own chain (parent certificate first, root last); omit when `parent` is the root. */
  readonly parentChainPem?: string;
  /** The cluster name, written as L=<cluster> as Istio's Makefile does. */
  readonly cluster: string;
  readonly days?: number;
  readonly now?: Date;
}

/**
 * A per-cluster intermediate CA as Istio's `make <cluster>-cacerts` makes it (O=Istio,
 * CN=Intermediate CA, L=<cluster>, pathlen 0, DNS SAN istiod.istio-system.svc), returned as
 * the four `cacerts` files.
 */
export async function createIntermediateCa(opts: IntermediateOptions): Promise<CaFiles> {
  const now = opts.now ?? new Date();
  const keys = await newKeys();
  const parentCert = new x509.X509Certificate(opts.parent.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `O=Istio, CN=Intermediate CA, L=${opts.cluster}`,
    issuer: parentCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (opts.days ?? 3650) * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: await importSigningKey(opts.parent.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "istiod.istio-system.svc" }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(parentCert),
    ],
  });
  const certPem = cert.toString("pem");
  const above = splitPem(opts.parentChainPem ?? "");
  const parentChain = above.length > 0 ? above : [opts.parent.certPem];
  const rootPem = parentChain.at(-1) ?? opts.parent.certPem;
  const chain = [certPem, ...parentChain];
  return {
    "ca-cert.pem": ensureNewline(certPem),
    "ca-key.pem": await keyToPem(keys.privateKey),
    "root-cert.pem": ensureNewline(rootPem),
    "cert-chain.pem": chain.map(ensureNewline).join(""),
  };
}

function ensureNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}

/** What a leaf is for: a workload identity (URI SAN, client+server auth) or a DNS-named server. */
export type LeafSubject =
  | { readonly kind: "workload"; readonly spiffeId: string }
  | { readonly kind: "server"; readonly dnsNames: readonly string[] };

export interface SignOptions {
  readonly issuer: KeyedCert;
  readonly publicKey: webcrypto.CryptoKey | x509.PublicKey;
  readonly subject: LeafSubject;
  readonly ttlMs: number;
  readonly now?: Date;
}

/** Signs a leaf certificate for `publicKey`. Workload leaves have an empty subject and a critical URI SAN, as Istio's. */
export async function signLeaf(opts: SignOptions): Promise<string> {
  const now = opts.now ?? new Date();
  const issuerCert = new x509.X509Certificate(opts.issuer.certPem);
  const san =
    opts.subject.kind === "workload"
      ? new x509.SubjectAlternativeNameExtension([{ type: "url", value: opts.subject.spiffeId }], true)
      : new x509.SubjectAlternativeNameExtension(
          opts.subject.dnsNames.map((value) => ({ type: "dns" as const, value })),
          false,
        );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: opts.subject.kind === "server" ? `CN=${opts.subject.dnsNames[0] ?? ""}` : "",
    issuer: issuerCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + opts.ttlMs),
    signingAlgorithm: ALG,
    publicKey: opts.publicKey,
    signingKey: await importSigningKey(opts.issuer.keyPem),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      san,
      await x509.AuthorityKeyIdentifierExtension.create(issuerCert),
    ],
  });
  return ensureNewline(cert.toString("pem"));
}

/** A fresh key and its leaf certificate (for istiod's own serving certificates). */
export async function issueKeyedLeaf(opts: Omit<SignOptions, "publicKey">): Promise<KeyedCert> {
  const keys = await newKeys();
  const certPem = await signLeaf({ ...opts, publicKey: keys.publicKey });
  return { certPem, keyPem: await keyToPem(keys.privateKey) };
}

/** A parsed certificate signing request: the key it carries and the identities it asks for. */
export interface ParsedCsr {
  readonly publicKey: x509.PublicKey;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
}

/**
 * Parses and verifies a PEM (or base64 DER) PKCS#10 CSR. Returns a reason instead of throwing
 * when it is not a CSR or its self-signature does not verify.
 */
export async function parseCsr(
  csrPem: string,
): Promise<{ ok: true; value: ParsedCsr } | { ok: false; reason: string }> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem.trim());
  } catch (err) {
    return { ok: false, reason: `the CSR is not a PEM PKCS#10 certificate request (${(err as Error).message})` };
  }
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (err) {
    // A damaged public key makes verify() throw rather than answer false.
    return { ok: false, reason: `the CSR's key cannot be read (${(err as Error).message})` };
  }
  if (!verified) return { ok: false, reason: "the CSR's signature does not verify against its own key" };
  const uris: string[] = [];
  const dnsNames: string[] = [];
  // getExtension(SubjectAlternativeNameExtension) returns null on a CSR; look it up by OID.
  const ext = csr.getExtension("2.5.29.17");
  if (ext !== null) {
    const sanExt = new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const n of sanExt.names.items) {
      if (n.type === "url") uris.push(n.value);
      else if (n.type === "dns") dnsNames.push(n.value);
    }
  }
  return { ok: true, value: { publicKey: csr.publicKey, uris, dnsNames } };
}

/** A CSR for `spiffeId` with a fresh P-256 key (what a proxy sends); for tests and tools. */
export async function createCsr(spiffeId: string): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await newKeys();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "",
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }], true)],
  });
  return { csrPem: csr.toString("pem"), keyPem: await keyToPem(keys.privateKey) };
}

/** True when `certPem`'s public key is the one in `keyPem` (a plug-in CA whose files do not match is refused). */
export function keyMatchesCert(certPem: string, keyPem: string): boolean {
  try {
    return new NodeX509(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
