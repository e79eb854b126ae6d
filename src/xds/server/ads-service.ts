/**
 * The gRPC service definition of `envoy.service.discovery.v3.AggregatedDiscoveryService`, wired by
 * hand to the protobuf-es messages (grpc-js only needs paths and (de)serializers). Used by the
 * server and by the client.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ServiceDefinition } from "@grpc/grpc-js";
import {
  type DeltaDiscoveryRequest,
  DeltaDiscoveryRequestSchema,
  type DeltaDiscoveryResponse,
  DeltaDiscoveryResponseSchema,
  type DiscoveryRequest,
  DiscoveryRequestSchema,
  type DiscoveryResponse,
  DiscoveryResponseSchema,
} from "../../gen/envoy/service/discovery/v3/discovery_pb.js";

const service = "/envoy.service.discovery.v3.AggregatedDiscoveryService";

/** Wraps serialized bytes without copying them: a full push of large responses to many proxies is mostly memcpy otherwise. */
function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** ADS with both state-of-the-world and delta (incremental) streams. */
export const adsServiceDefinition = {
  StreamAggregatedResources: {
    path: `${service}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: DiscoveryRequest) => asBuffer(toBinary(DiscoveryRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(DiscoveryRequestSchema, b),
    // The server may hand over a response it encoded itself (see wire.ts).
    responseSerialize: (m: DiscoveryResponse | Buffer) =>
      Buffer.isBuffer(m) ? m : asBuffer(toBinary(DiscoveryResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(DiscoveryResponseSchema, b),
  },
  DeltaAggregatedResources: {
    path: `${service}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: DeltaDiscoveryRequest) => asBuffer(toBinary(DeltaDiscoveryRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(DeltaDiscoveryRequestSchema, b),
    responseSerialize: (m: DeltaDiscoveryResponse | Buffer) =>
      Buffer.isBuffer(m) ? m : asBuffer(toBinary(DeltaDiscoveryResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(DeltaDiscoveryResponseSchema, b),
  },
} satisfies ServiceDefinition;
