// The gRPC contract as seen from TypeScript. Field names keep the proto's
// snake_case (keepCase: true) so a field has one name everywhere: in the
// .proto, on the wire, in error messages and in this code. int64 fields are
// plain numbers (revisions and millisecond times stay far below 2^53), enums
// are their names, and absent fields arrive with their proto3 defaults.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import type {
  ControllerClient as GeneratedControllerClient, ControllerDefinition, ControllerHandlers,
} from './gen/weft/v1/Controller';
import type { Endpoint__Output } from './gen/weft/v1/Endpoint';
import type { ServiceEvent__Output } from './gen/weft/v1/ServiceEvent';
import type { TopologyEvent__Output } from './gen/weft/v1/TopologyEvent';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** weft.proto sits beside this file in the source tree; a bundle may pass its own copy's path. */
export function protoPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'weft.proto');
}

const loaded = new Map<string, grpc.ServiceDefinition>();

/**
 * What a request body decodes to when it is not the method's message at all
 * (grpc-js would answer such a body INTERNAL, as if the server were at fault).
 * The service refuses it with INVALID_ARGUMENT before anything else.
 */
export class UndecodableRequest {
  constructor(readonly reason: string) {}
}

/** The weft.v1.Controller service definition, for server.addService and makeGenericClientConstructor. */
export function controllerServiceDefinition(path: string = protoPath()): grpc.ServiceDefinition {
  let svc = loaded.get(path);
  if (svc) return svc;
  const def = protoLoader.loadSync(path, LOADER_OPTIONS);
  svc = def['weft.v1.Controller'] as grpc.ServiceDefinition | undefined;
  if (!svc) throw new Error(`${path} does not define service weft.v1.Controller`);
  for (const method of Object.values(svc)) {
    if (method.responseStream) method.responseSerialize = encodeOnce(method.responseSerialize);
    const decode = method.requestDeserialize;
    method.requestDeserialize = (buf: Buffer) => {
      try {
        return decode(buf);
      } catch (e) {
        return new UndecodableRequest(e instanceof Error ? e.message : String(e));
      }
    };
  }
  loaded.set(path, svc);
  return svc;
}

/**
 * A watch hands the same message object to every stream (the hubs in
 * controller/service), so its bytes are encoded once and reused by identity:
 * at 5,000 hosts a snapshot encoded per stream was O(hosts²) CPU and as
 * many copies. Messages are never changed after they are sent.
 */
function encodeOnce<T>(encode: (value: T) => Buffer): (value: T) => Buffer {
  const encoded = new WeakMap<object, Buffer>();
  return (value) => {
    if (typeof value !== 'object' || value === null) return encode(value);
    let buf = encoded.get(value);
    if (!buf) encoded.set(value, (buf = encode(value)));
    return buf;
  };
}

export type ControllerStubConstructor = (new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => ControllerStub) & {
  service: grpc.ServiceDefinition;
};

/** A typed client constructor for the Controller service; the client (client/) is built on it. */
export function controllerClientConstructor(path?: string): ControllerStubConstructor {
  return grpc.makeGenericClientConstructor(controllerServiceDefinition(path), 'Controller') as unknown as ControllerStubConstructor;
}

// ---- messages: generated from weft.proto into gen/ (npm run gen:api) --------
//
// Each message comes in two shapes. Its plain name here is the generated
// `…__Output` type: the message as the loader hands it over, every field
// present (absent ones as their proto3 defaults, a message field as null).
// What a caller sends may leave fields out; RequestOf<M> is that shape for a
// method's request (the generated plain type). ResponseOf<M> is what a
// client receives.

export type { Backend__Output as Backend } from './gen/weft/v1/Backend';
export type { ClusterConfig__Output as ClusterConfigMsg } from './gen/weft/v1/ClusterConfig';
export type { CreateServiceRequest__Output as CreateServiceRequest } from './gen/weft/v1/CreateServiceRequest';
export type { CreateDatacenterRequest__Output as CreateDatacenterRequest } from './gen/weft/v1/CreateDatacenterRequest';
export type { Datacenter__Output as Datacenter } from './gen/weft/v1/Datacenter';
export type { DatacenterGateway__Output as DatacenterGateway } from './gen/weft/v1/DatacenterGateway';
export type { DatacenterReply__Output as DatacenterReply } from './gen/weft/v1/DatacenterReply';
export type { DatacenterSubnet__Output as DatacenterSubnet } from './gen/weft/v1/DatacenterSubnet';
export type { DeleteDatacenterRequest__Output as DeleteDatacenterRequest } from './gen/weft/v1/DeleteDatacenterRequest';
export type { DeleteDatacenterResponse__Output as DeleteDatacenterResponse } from './gen/weft/v1/DeleteDatacenterResponse';
export type { GatewayRequest__Output as GatewayRequest } from './gen/weft/v1/GatewayRequest';
export type { GatewaySpec__Output as GatewaySpec } from './gen/weft/v1/GatewaySpec';
export type { ListDatacentersRequest__Output as ListDatacentersRequest } from './gen/weft/v1/ListDatacentersRequest';
export type { ListDatacentersResponse__Output as ListDatacentersResponse } from './gen/weft/v1/ListDatacentersResponse';
export type { DeleteServiceRequest__Output as DeleteServiceRequest } from './gen/weft/v1/DeleteServiceRequest';
export type { DeleteServiceResponse__Output as DeleteServiceResponse } from './gen/weft/v1/DeleteServiceResponse';
export type { Endpoint__Output as Endpoint } from './gen/weft/v1/Endpoint';
export type { GetStatusRequest__Output as GetStatusRequest } from './gen/weft/v1/GetStatusRequest';
export type { HeartbeatRequest__Output as HeartbeatRequest } from './gen/weft/v1/HeartbeatRequest';
export type { HeartbeatResponse__Output as HeartbeatResponse } from './gen/weft/v1/HeartbeatResponse';
export type { Host__Output as Host } from './gen/weft/v1/Host';
export type { HostSubnet__Output as HostSubnet } from './gen/weft/v1/HostSubnet';
export type { HostStatus__Output as HostStatus } from './gen/weft/v1/HostStatus';
export type { ListHostsRequest__Output as ListHostsRequest } from './gen/weft/v1/ListHostsRequest';
export type { ListHostsResponse__Output as ListHostsResponse } from './gen/weft/v1/ListHostsResponse';
export type { OverlayReport__Output as OverlayReport } from './gen/weft/v1/OverlayReport';
export type { JoinRequest__Output as JoinRequest } from './gen/weft/v1/JoinRequest';
export type { JoinResponse__Output as JoinResponse } from './gen/weft/v1/JoinResponse';
export type { LeaveHostRequest__Output as LeaveHostRequest } from './gen/weft/v1/LeaveHostRequest';
export type { LeaveHostResponse__Output as LeaveHostResponse } from './gen/weft/v1/LeaveHostResponse';
export type { ListEndpointsRequest__Output as ListEndpointsRequest } from './gen/weft/v1/ListEndpointsRequest';
export type { ListEndpointsResponse__Output as ListEndpointsResponse } from './gen/weft/v1/ListEndpointsResponse';
export type { ListServicesRequest__Output as ListServicesRequest } from './gen/weft/v1/ListServicesRequest';
export type { ListServicesResponse__Output as ListServicesResponse } from './gen/weft/v1/ListServicesResponse';
export type { Network__Output as Network } from './gen/weft/v1/Network';
export type { RegisterEndpointRequest__Output as RegisterEndpointRequest } from './gen/weft/v1/RegisterEndpointRequest';
export type { RegisterHostRequest__Output as RegisterHostRequest } from './gen/weft/v1/RegisterHostRequest';
export type { RegisterHostResponse__Output as RegisterHostResponse } from './gen/weft/v1/RegisterHostResponse';
export type { ReleaseEndpointRequest__Output as ReleaseEndpointRequest } from './gen/weft/v1/ReleaseEndpointRequest';
export type { ReleaseEndpointResponse__Output as ReleaseEndpointResponse } from './gen/weft/v1/ReleaseEndpointResponse';
export type { Service__Output as Service } from './gen/weft/v1/Service';
export type { ServiceEvent__Output as ServiceEvent } from './gen/weft/v1/ServiceEvent';
export type { ServicePort__Output as ServicePort } from './gen/weft/v1/ServicePort';
export type { ServiceState__Output as ServiceState } from './gen/weft/v1/ServiceState';
export type { Status__Output as Status } from './gen/weft/v1/Status';
export type { TopologyEvent__Output as TopologyEvent } from './gen/weft/v1/TopologyEvent';
export type { WatchServicesRequest__Output as WatchServicesRequest } from './gen/weft/v1/WatchServicesRequest';
export type { WatchTopologyRequest__Output as WatchTopologyRequest } from './gen/weft/v1/WatchTopologyRequest';
// tunnels between datacenters and WireGuard key rotation
export type { DatacenterTunnels__Output as DatacenterTunnels } from './gen/weft/v1/DatacenterTunnels';
export type { GatewayTunnels__Output as GatewayTunnels } from './gen/weft/v1/GatewayTunnels';
export type { ListTunnelsRequest__Output as ListTunnelsRequest } from './gen/weft/v1/ListTunnelsRequest';
export type { ListTunnelsResponse__Output as ListTunnelsResponse } from './gen/weft/v1/ListTunnelsResponse';
export type { RotateWireGuardKeysRequest__Output as RotateWireGuardKeysRequest } from './gen/weft/v1/RotateWireGuardKeysRequest';
export type { RotateWireGuardKeysResponse__Output as RotateWireGuardKeysResponse } from './gen/weft/v1/RotateWireGuardKeysResponse';
export type { RotationAsked__Output as RotationAsked } from './gen/weft/v1/RotationAsked';
export type { SetOwnGatewayStateRequest__Output as SetOwnGatewayStateRequest } from './gen/weft/v1/SetOwnGatewayStateRequest';
export type { SetOwnGatewayStateResponse__Output as SetOwnGatewayStateResponse } from './gen/weft/v1/SetOwnGatewayStateResponse';
export type { SetWireGuardKeyRequest__Output as SetWireGuardKeyRequest } from './gen/weft/v1/SetWireGuardKeyRequest';
export type { SetWireGuardKeyResponse__Output as SetWireGuardKeyResponse } from './gen/weft/v1/SetWireGuardKeyResponse';
export type { TunnelPath__Output as TunnelPath } from './gen/weft/v1/TunnelPath';
export type { TunnelPathSummary__Output as TunnelPathSummary } from './gen/weft/v1/TunnelPathSummary';
export type { TunnelPeer__Output as TunnelPeer } from './gen/weft/v1/TunnelPeer';
export type { TunnelReport__Output as TunnelReport } from './gen/weft/v1/TunnelReport';

export type TopologyEventKind = TopologyEvent__Output['kind'];
export type ServiceEventKind = ServiceEvent__Output['kind'];

// ---- methods ---------------------------------------------------------------

/** The generated typed client for weft.v1.Controller (what controllerClientConstructor makes). */
export type ControllerStub = GeneratedControllerClient;
/** The generated server-side handler types, one per method. */
export type { ControllerHandlers };

type Methods = { [K in keyof ControllerDefinition as string extends K ? never : K]: ControllerDefinition[K] };
export type ControllerMethod = keyof Methods & string;
/** Methods that answer with a stream of messages: the watches. */
export type StreamMethod = { [M in ControllerMethod]: ControllerHandlers[M] extends grpc.handleServerStreamingCall<any, any> ? M : never }[ControllerMethod];
export type UnaryMethod = Exclude<ControllerMethod, StreamMethod>;
/** A method's request as a caller may send it: fields left out are sent as their defaults. */
export type RequestOf<M extends ControllerMethod> = Methods[M] extends MethodDefinition<infer Req, any, any, any> ? Req : never;
/** A method's response (or each message of its stream) as the caller receives it. */
export type ResponseOf<M extends ControllerMethod> = Methods[M] extends MethodDefinition<any, any, any, infer Res> ? Res : never;

/**
 * Trailing metadata key of a refused call: the controller's stable error code
 * (controller/common/errors.ts), for clients that act on one refusal in
 * particular instead of reading its message.
 */
export const WEFT_CODE_TRAILER = 'weft-code';

// ---- the endpoint record ---------------------------------------------------

/**
 * A container endpoint as weft holds it: the controller's stored record and
 * what the agent queues for it. The Endpoint message with the container id in
 * camelCase, the form the store's JSON has always had.
 */
export type EndpointRecord = Omit<Endpoint__Output, 'container_id'> & { containerId: string };

export function endpointMessage(e: EndpointRecord): Endpoint__Output {
  return { network: e.network, ip: e.ip, container_id: e.containerId, host: e.host, labels: e.labels, ifname: e.ifname };
}
