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

/** ADS with both state-of-the-world and delta (incremental) streams. */
export const adsServiceDefinition = {
  StreamAggregatedResources: {
    path: `${service}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: DiscoveryRequest) => Buffer.from(toBinary(DiscoveryRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(DiscoveryRequestSchema, b),
    responseSerialize: (m: DiscoveryResponse) => Buffer.from(toBinary(DiscoveryResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(DiscoveryResponseSchema, b),
  },
  DeltaAggregatedResources: {
    path: `${service}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: DeltaDiscoveryRequest) => Buffer.from(toBinary(DeltaDiscoveryRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(DeltaDiscoveryRequestSchema, b),
    responseSerialize: (m: DeltaDiscoveryResponse) => Buffer.from(toBinary(DeltaDiscoveryResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(DeltaDiscoveryResponseSchema, b),
  },
} satisfies ServiceDefinition;
