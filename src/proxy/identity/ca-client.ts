/**
 * The sidecar's side of Istio's certificate service: a fresh key, a CSR naming the workload's
 * SPIFFE ID, and a call to `IstioCertificateService/CreateCertificate` on the control plane
 * (15012, TLS verified against the mesh root) authenticated by the pod's service-account token
 * and its cluster ID. The CA decides the identity from the token; the CSR's is only a request.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import {
  type IstioCertificateRequest,
  IstioCertificateRequestSchema,
  type IstioCertificateResponse,
  IstioCertificateResponseSchema,
} from "../../gen/istio/v1/auth/ca_pb.js";
import { create } from "@bufbuild/protobuf";
import type { WorkloadCertificate } from "../tls/identity.js";

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

const createCertificateMethod: grpc.MethodDefinition<IstioCertificateRequest, IstioCertificateResponse> = {
  path: "/istio.v1.auth.IstioCertificateService/CreateCertificate",
  requestStream: false,
  responseStream: false,
  requestSerialize: (m) => Buffer.from(toBinary(IstioCertificateRequestSchema, m)),
  requestDeserialize: (b) => fromBinary(IstioCertificateRequestSchema, b),
  responseSerialize: (m) => Buffer.from(toBinary(IstioCertificateResponseSchema, m)),
  responseDeserialize: (b) => fromBinary(IstioCertificateResponseSchema, b),
};

export interface CertificateRequestOptions {
  /** `host:port` of the CA (CA_ADDR, e.g. istiod.istio-system.svc:15012). */
  readonly caAddress: string;
  /** PEM roots that sign the CA's serving certificate (the mesh root). */
  readonly caRootPem: string;
  /** TLS server name to verify; defaults to the host part of caAddress. */
  readonly caServerName?: string;
  readonly token: string;
  readonly clusterId: string;
  readonly spiffeId: string;
  readonly ttlSeconds: number;
  readonly timeoutMs?: number;
}

/** Thrown when the CA refuses or cannot be reached; the message carries the CA's own reason. */
export class CertificateRequestError extends Error {
  readonly code = "ISTHMUS_ERR_CERTIFICATE_REQUEST";
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
}

/** Requests a workload certificate; resolves with the chain, the key and the root to trust. */
export async function requestCertificate(opts: CertificateRequestOptions): Promise<WorkloadCertificate> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const keys = await keyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "",
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: opts.spiffeId }], true)],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  const [host] = opts.caAddress.split(":");
  const client = new grpc.Client(opts.caAddress, grpc.credentials.createSsl(Buffer.from(opts.caRootPem)), {
    "grpc.ssl_target_name_override": opts.caServerName ?? host ?? "",
    "grpc.default_authority": opts.caServerName ?? host ?? "",
  });
  try {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${opts.token}`);
    metadata.set("clusterid", opts.clusterId);
    const request = create(IstioCertificateRequestSchema, {
      csr: csr.toString("pem"),
      validityDuration: BigInt(opts.ttlSeconds),
    });
    const response = await new Promise<IstioCertificateResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        createCertificateMethod.path,
        createCertificateMethod.requestSerialize,
        createCertificateMethod.responseDeserialize,
        request,
        metadata,
        { deadline: Date.now() + (opts.timeoutMs ?? 10_000) },
        (err, value) => {
          if (err)
            reject(
              new CertificateRequestError(
                `the CA at ${opts.caAddress} refused the certificate request: ${err.details || err.message}`,
              ),
            );
          else if (value === undefined)
            reject(new CertificateRequestError(`the CA at ${opts.caAddress} sent no certificate`));
          else resolve(value);
        },
      );
    });
    const chain = response.certChain;
    if (chain.length === 0)
      throw new CertificateRequestError(`the CA at ${opts.caAddress} sent an empty certificate chain`);
    const leaf = new x509.X509Certificate(chain[0] ?? "");
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    const spiffeId = san?.names.items.find((n) => n.type === "url")?.value ?? opts.spiffeId;
    return {
      certChainPem: chain.slice(0, chain.length > 1 ? -1 : undefined).join(""),
      keyPem,
      // Peers are trusted by the configured mesh root, not by whatever root the response names.
      rootPem: opts.caRootPem,
      spiffeId,
      notAfter: leaf.notAfter,
    };
  } finally {
    client.close();
  }
}
