/**
 * The signing half of the mesh CA: holds the CA's files, checks they fit together, signs
 * workload CSRs and issues istiod's own serving certificates, all chaining to one root.
 */
import { X509Certificate } from "node:crypto";
import type { Checked } from "../base/index.js";
import { type CaFiles, issueKeyedLeaf, type KeyedCert, keyMatchesCert, parseCsr, signLeaf, splitPem } from "./pki.js";

/** Istio's DEFAULT_WORKLOAD_CERT_TTL: 24 h. */
export const DEFAULT_WORKLOAD_CERT_TTL_MS = 24 * 3_600_000;
/** Istio's MAX_WORKLOAD_CERT_TTL: 90 days. */
export const MAX_WORKLOAD_CERT_TTL_MS = 90 * 24 * 3_600_000;

/** Where the CA's key came from, in the order istiod looks. */
export type CaSource = "cacerts-dir" | "cacerts" | "istio-ca-secret" | "generated";

/** DNS names istiod's serving certificates carry (xDS on 15012, the injection webhook on 15017). */
export const ISTIOD_DNS_NAMES = [
  "istiod.istio-system.svc",
  "istiod.istio-system.svc.cluster.local",
  "istiod.istio-system",
  "istiod",
] as const;

export class CertificateAuthority {
  readonly source: CaSource;
  readonly #signer: KeyedCert;
  /** The signing certificate up to and including the root. */
  readonly certChain: readonly string[];

  private constructor(source: CaSource, signer: KeyedCert, certChain: readonly string[]) {
    this.source = source;
    this.#signer = signer;
    this.certChain = certChain;
  }

  /**
   * Builds a CA from Istio's files after checking them: the key matches the certificate, it is a
   * CA, each certificate of the chain is signed by the next, and the chain ends at the root.
   * An empty `cert-chain.pem`/`root-cert.pem` means a self-signed root (as in `istio-ca-secret`).
   */
  static fromFiles(files: CaFiles, source: CaSource, now = new Date()): Checked<CertificateAuthority> {
    const reasons: string[] = [];
    const certPem = files["ca-cert.pem"];
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch {
      return { ok: false, reasons: ["ca-cert.pem is not a PEM certificate"] };
    }
    if (!cert.ca) reasons.push("ca-cert.pem is not a CA certificate (basicConstraints CA:true is missing)");
    if (!keyMatchesCert(certPem, files["ca-key.pem"])) reasons.push("ca-key.pem is not the key of ca-cert.pem");
    if (new Date(cert.validTo) < now) reasons.push(`ca-cert.pem expired on ${cert.validTo}`);
    const rootPem = files["root-cert.pem"].trim() === "" ? certPem : files["root-cert.pem"];
    const chainPems = splitPem(files["cert-chain.pem"]);
    const chain = chainPems.length > 0 ? chainPems : splitPem(certPem === rootPem ? certPem : `${certPem}${rootPem}`);
    try {
      const parsed = chain.map((p) => new X509Certificate(p));
      const root = new X509Certificate(rootPem);
      if (parsed[0]?.fingerprint256 !== cert.fingerprint256)
        reasons.push("cert-chain.pem does not start with ca-cert.pem");
      if (parsed.at(-1)?.fingerprint256 !== root.fingerprint256)
        reasons.push("cert-chain.pem does not end with root-cert.pem");
      for (let i = 0; i + 1 < parsed.length; i++) {
        const child = parsed[i];
        const parent = parsed[i + 1];
        if (child && parent && !child.verify(parent.publicKey)) {
          reasons.push(`certificate ${i + 1} of cert-chain.pem is not signed by certificate ${i + 2}`);
        }
      }
      if (!root.verify(root.publicKey)) reasons.push("root-cert.pem is not self-signed");
    } catch {
      reasons.push("cert-chain.pem or root-cert.pem holds something that is not a PEM certificate");
    }
    if (reasons.length > 0) return { ok: false, reasons };
    return { ok: true, value: new CertificateAuthority(source, { certPem, keyPem: files["ca-key.pem"] }, chain) };
  }

  /** The root every workload trusts (published as ConfigMap `istio-ca-root-cert`). */
  get rootPem(): string {
    return this.certChain.at(-1) ?? this.#signer.certPem;
  }

  /**
   * Signs `csrPem` for `spiffeId`. The CSR may ask for that identity or none; a CSR asking for
   * any other identity, or for DNS names, is refused with the reason. Returns leaf + chain.
   */
  async signWorkloadCsr(opts: {
    csrPem: string;
    spiffeId: string;
    ttlMs?: number;
    now?: Date;
  }): Promise<Checked<string[]>> {
    const ttlMs = opts.ttlMs === undefined || opts.ttlMs <= 0 ? DEFAULT_WORKLOAD_CERT_TTL_MS : opts.ttlMs;
    if (ttlMs > MAX_WORKLOAD_CERT_TTL_MS) {
      return {
        ok: false,
        reasons: [`requested validity ${ttlMs / 1000}s is longer than the maximum ${MAX_WORKLOAD_CERT_TTL_MS / 1000}s`],
      };
    }
    const csr = await parseCsr(opts.csrPem);
    if (!csr.ok) return { ok: false, reasons: [csr.reason] };
    const others = csr.value.uris.filter((u) => u !== opts.spiffeId);
    if (others.length > 0) {
      return {
        ok: false,
        reasons: [`the CSR asks for identity ${others.join(", ")}, but the caller's token is for ${opts.spiffeId}`],
      };
    }
    if (csr.value.dnsNames.length > 0) {
      return {
        ok: false,
        reasons: [
          `the CSR asks for DNS names ${csr.value.dnsNames.join(", ")}; workload certificates carry only ${opts.spiffeId}`,
        ],
      };
    }
    const leaf = await signLeaf({
      issuer: this.#signer,
      publicKey: csr.value.publicKey,
      subject: { kind: "workload", spiffeId: opts.spiffeId },
      ttlMs,
      now: opts.now,
    });
    return { ok: true, value: [leaf, ...this.certChain] };
  }

  /**
   * A serving certificate for istiod (key + PEM chain: leaf first, root last), for the xDS TLS
   * port and the injection webhook. Default names: ISTIOD_DNS_NAMES; default validity 1 year.
   */
  async issueServingCert(opts: { dnsNames?: readonly string[]; ttlMs?: number; now?: Date } = {}): Promise<KeyedCert> {
    const leaf = await issueKeyedLeaf({
      issuer: this.#signer,
      subject: { kind: "server", dnsNames: opts.dnsNames ?? ISTIOD_DNS_NAMES },
      ttlMs: opts.ttlMs ?? 365 * 24 * 3_600_000,
      now: opts.now,
    });
    return { certPem: `${leaf.certPem}${this.certChain.join("")}`, keyPem: leaf.keyPem };
  }
}
