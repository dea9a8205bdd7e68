// The gRPC contract as seen from TypeScript. Field names keep the proto's
// snake_case (keepCase: true) so a field has one name everywhere: in the
// .proto, on the wire, in error messages and in this code. int64 fields are
// plain numbers (revisions and millisecond times stay far below 2^53), enums
// are their names, and absent fields arrive with their proto3 defaults.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

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

/** The weft.v1.Controller service definition, for server.addService and makeGenericClientConstructor. */
export function controllerServiceDefinition(path: string = protoPath()): grpc.ServiceDefinition {
  let svc = loaded.get(path);
  if (svc) return svc;
  const def = protoLoader.loadSync(path, LOADER_OPTIONS);
  svc = def['weft.v1.Controller'] as grpc.ServiceDefinition | undefined;
  if (!svc) throw new Error(`${path} does not define service weft.v1.Controller`);
  loaded.set(path, svc);
  return svc;
}

/** A client constructor for the Controller service (tests, agent, ingress, CLI). */
export function controllerClientConstructor(path?: string): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(controllerServiceDefinition(path), 'Controller');
}

// ---- messages (mirror weft.proto) -----------------------------------------

export type JoinRequest = { token: string; host_name: string; public_key_pem: string };
export type JoinResponse = { certificate_pem: string; ca_pem: string; expires_at_unix_ms: number };

export type Network = { name: string; vni: number; cidr: string; host_prefix_length: number };
export type ClusterConfigMsg = {
  networks: Network[];
  vxlan_port: number;
  mtu: number;
  lease_ttl_seconds: number;
};

export type HostSubnet = { network: string; subnet: string; lease_expires_at_unix_ms: number };

/** What a host says about itself: the fields Host and RegisterHostRequest share. */
type HostFields = {
  name: string;
  underlay_ip: string;
  vtep_mac: string;
  rack: string;
  datacenter: string;
  wg_public_key: string;
  agent_version: string;
};

export type Host = HostFields & { last_heartbeat_unix_ms: number; subnets: HostSubnet[] };

export type RegisterHostRequest = HostFields & { networks: string[] };
export type RegisterHostResponse = { host: Host; config: ClusterConfigMsg; revision: number };

export type HeartbeatRequest = { name: string };
export type HeartbeatResponse = { subnets: HostSubnet[]; next_heartbeat_seconds: number; revision: number };

export type LeaveHostRequest = { name: string };
export type LeaveHostResponse = { revision: number };

/** from_revision: the last revision the client has applied (0: start with a snapshot). */
export type WatchTopologyRequest = { from_revision: number };

export type TopologyEventKind = 'KIND_UNSPECIFIED' | 'SNAPSHOT' | 'HOST_PUT' | 'HOST_DELETE' | 'CONFIG';
export type TopologyEvent = {
  revision: number;
  kind: TopologyEventKind;
  hosts: Host[];
  host_name: string;
  config: ClusterConfigMsg | null;
};

export type Endpoint = {
  network: string;
  ip: string;
  container_id: string;
  host: string;
  labels: Record<string, string>;
  ifname: string;
};

export type RegisterEndpointRequest = { endpoint: Endpoint | null };
export type ReleaseEndpointRequest = { network: string; ip: string; container_id: string };
export type ReleaseEndpointResponse = { released: boolean };
export type ListEndpointsRequest = { network: string; host: string };
export type ListEndpointsResponse = { endpoints: Endpoint[]; revision: number };

export type ServicePort = { name: string; port: number; target_port: number; protocol: string };
export type Service = {
  name: string;
  ports: ServicePort[];
  selector: Record<string, string>;
  network: string;
  rack_policy: string;
};

export type CreateServiceRequest = { service: Service | null };
export type DeleteServiceRequest = { name: string };
export type DeleteServiceResponse = { deleted: boolean };
export type ListServicesRequest = Record<string, never>;
export type ListServicesResponse = { services: Service[]; revision: number };

export type Backend = { ip: string; host: string; rack: string; datacenter: string; container_id: string };
export type ServiceState = { service: Service; backends: Backend[] };

/** from_revision: the last revision the client has applied (0: start with a snapshot). */
export type WatchServicesRequest = { from_revision: number };

export type ServiceEventKind = 'KIND_UNSPECIFIED' | 'SNAPSHOT' | 'SERVICE_PUT' | 'SERVICE_DELETE';
export type ServiceEvent = {
  revision: number;
  kind: ServiceEventKind;
  services: ServiceState[];
  service_name: string;
};

export type GetStatusRequest = Record<string, never>;
export type Status = {
  controller_id: string;
  leader: boolean;
  revision: number;
  store: string;
  hosts: number;
  leases: number;
  endpoints: number;
  services: number;
  version: string;
};
