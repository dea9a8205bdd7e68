// Original file: controller/api/weft.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CreateDatacenterRequest as _weft_v1_CreateDatacenterRequest, CreateDatacenterRequest__Output as _weft_v1_CreateDatacenterRequest__Output } from '../../weft/v1/CreateDatacenterRequest';
import type { CreateServiceRequest as _weft_v1_CreateServiceRequest, CreateServiceRequest__Output as _weft_v1_CreateServiceRequest__Output } from '../../weft/v1/CreateServiceRequest';
import type { DatacenterReply as _weft_v1_DatacenterReply, DatacenterReply__Output as _weft_v1_DatacenterReply__Output } from '../../weft/v1/DatacenterReply';
import type { DeleteDatacenterRequest as _weft_v1_DeleteDatacenterRequest, DeleteDatacenterRequest__Output as _weft_v1_DeleteDatacenterRequest__Output } from '../../weft/v1/DeleteDatacenterRequest';
import type { DeleteDatacenterResponse as _weft_v1_DeleteDatacenterResponse, DeleteDatacenterResponse__Output as _weft_v1_DeleteDatacenterResponse__Output } from '../../weft/v1/DeleteDatacenterResponse';
import type { DeleteServiceRequest as _weft_v1_DeleteServiceRequest, DeleteServiceRequest__Output as _weft_v1_DeleteServiceRequest__Output } from '../../weft/v1/DeleteServiceRequest';
import type { DeleteServiceResponse as _weft_v1_DeleteServiceResponse, DeleteServiceResponse__Output as _weft_v1_DeleteServiceResponse__Output } from '../../weft/v1/DeleteServiceResponse';
import type { Endpoint as _weft_v1_Endpoint, Endpoint__Output as _weft_v1_Endpoint__Output } from '../../weft/v1/Endpoint';
import type { GatewayRequest as _weft_v1_GatewayRequest, GatewayRequest__Output as _weft_v1_GatewayRequest__Output } from '../../weft/v1/GatewayRequest';
import type { GetStatusRequest as _weft_v1_GetStatusRequest, GetStatusRequest__Output as _weft_v1_GetStatusRequest__Output } from '../../weft/v1/GetStatusRequest';
import type { HeartbeatRequest as _weft_v1_HeartbeatRequest, HeartbeatRequest__Output as _weft_v1_HeartbeatRequest__Output } from '../../weft/v1/HeartbeatRequest';
import type { HeartbeatResponse as _weft_v1_HeartbeatResponse, HeartbeatResponse__Output as _weft_v1_HeartbeatResponse__Output } from '../../weft/v1/HeartbeatResponse';
import type { JoinRequest as _weft_v1_JoinRequest, JoinRequest__Output as _weft_v1_JoinRequest__Output } from '../../weft/v1/JoinRequest';
import type { JoinResponse as _weft_v1_JoinResponse, JoinResponse__Output as _weft_v1_JoinResponse__Output } from '../../weft/v1/JoinResponse';
import type { LeaveHostRequest as _weft_v1_LeaveHostRequest, LeaveHostRequest__Output as _weft_v1_LeaveHostRequest__Output } from '../../weft/v1/LeaveHostRequest';
import type { LeaveHostResponse as _weft_v1_LeaveHostResponse, LeaveHostResponse__Output as _weft_v1_LeaveHostResponse__Output } from '../../weft/v1/LeaveHostResponse';
import type { ListDatacentersRequest as _weft_v1_ListDatacentersRequest, ListDatacentersRequest__Output as _weft_v1_ListDatacentersRequest__Output } from '../../weft/v1/ListDatacentersRequest';
import type { ListDatacentersResponse as _weft_v1_ListDatacentersResponse, ListDatacentersResponse__Output as _weft_v1_ListDatacentersResponse__Output } from '../../weft/v1/ListDatacentersResponse';
import type { ListEndpointsRequest as _weft_v1_ListEndpointsRequest, ListEndpointsRequest__Output as _weft_v1_ListEndpointsRequest__Output } from '../../weft/v1/ListEndpointsRequest';
import type { ListEndpointsResponse as _weft_v1_ListEndpointsResponse, ListEndpointsResponse__Output as _weft_v1_ListEndpointsResponse__Output } from '../../weft/v1/ListEndpointsResponse';
import type { ListHostsRequest as _weft_v1_ListHostsRequest, ListHostsRequest__Output as _weft_v1_ListHostsRequest__Output } from '../../weft/v1/ListHostsRequest';
import type { ListHostsResponse as _weft_v1_ListHostsResponse, ListHostsResponse__Output as _weft_v1_ListHostsResponse__Output } from '../../weft/v1/ListHostsResponse';
import type { ListServicesRequest as _weft_v1_ListServicesRequest, ListServicesRequest__Output as _weft_v1_ListServicesRequest__Output } from '../../weft/v1/ListServicesRequest';
import type { ListServicesResponse as _weft_v1_ListServicesResponse, ListServicesResponse__Output as _weft_v1_ListServicesResponse__Output } from '../../weft/v1/ListServicesResponse';
import type { ListTunnelsRequest as _weft_v1_ListTunnelsRequest, ListTunnelsRequest__Output as _weft_v1_ListTunnelsRequest__Output } from '../../weft/v1/ListTunnelsRequest';
import type { ListTunnelsResponse as _weft_v1_ListTunnelsResponse, ListTunnelsResponse__Output as _weft_v1_ListTunnelsResponse__Output } from '../../weft/v1/ListTunnelsResponse';
import type { RegisterEndpointRequest as _weft_v1_RegisterEndpointRequest, RegisterEndpointRequest__Output as _weft_v1_RegisterEndpointRequest__Output } from '../../weft/v1/RegisterEndpointRequest';
import type { RegisterHostRequest as _weft_v1_RegisterHostRequest, RegisterHostRequest__Output as _weft_v1_RegisterHostRequest__Output } from '../../weft/v1/RegisterHostRequest';
import type { RegisterHostResponse as _weft_v1_RegisterHostResponse, RegisterHostResponse__Output as _weft_v1_RegisterHostResponse__Output } from '../../weft/v1/RegisterHostResponse';
import type { ReleaseEndpointRequest as _weft_v1_ReleaseEndpointRequest, ReleaseEndpointRequest__Output as _weft_v1_ReleaseEndpointRequest__Output } from '../../weft/v1/ReleaseEndpointRequest';
import type { ReleaseEndpointResponse as _weft_v1_ReleaseEndpointResponse, ReleaseEndpointResponse__Output as _weft_v1_ReleaseEndpointResponse__Output } from '../../weft/v1/ReleaseEndpointResponse';
import type { RenewCertificateRequest as _weft_v1_RenewCertificateRequest, RenewCertificateRequest__Output as _weft_v1_RenewCertificateRequest__Output } from '../../weft/v1/RenewCertificateRequest';
import type { RotateWireGuardKeysRequest as _weft_v1_RotateWireGuardKeysRequest, RotateWireGuardKeysRequest__Output as _weft_v1_RotateWireGuardKeysRequest__Output } from '../../weft/v1/RotateWireGuardKeysRequest';
import type { RotateWireGuardKeysResponse as _weft_v1_RotateWireGuardKeysResponse, RotateWireGuardKeysResponse__Output as _weft_v1_RotateWireGuardKeysResponse__Output } from '../../weft/v1/RotateWireGuardKeysResponse';
import type { Service as _weft_v1_Service, Service__Output as _weft_v1_Service__Output } from '../../weft/v1/Service';
import type { ServiceEvent as _weft_v1_ServiceEvent, ServiceEvent__Output as _weft_v1_ServiceEvent__Output } from '../../weft/v1/ServiceEvent';
import type { SetOwnGatewayStateRequest as _weft_v1_SetOwnGatewayStateRequest, SetOwnGatewayStateRequest__Output as _weft_v1_SetOwnGatewayStateRequest__Output } from '../../weft/v1/SetOwnGatewayStateRequest';
import type { SetOwnGatewayStateResponse as _weft_v1_SetOwnGatewayStateResponse, SetOwnGatewayStateResponse__Output as _weft_v1_SetOwnGatewayStateResponse__Output } from '../../weft/v1/SetOwnGatewayStateResponse';
import type { SetWireGuardKeyRequest as _weft_v1_SetWireGuardKeyRequest, SetWireGuardKeyRequest__Output as _weft_v1_SetWireGuardKeyRequest__Output } from '../../weft/v1/SetWireGuardKeyRequest';
import type { SetWireGuardKeyResponse as _weft_v1_SetWireGuardKeyResponse, SetWireGuardKeyResponse__Output as _weft_v1_SetWireGuardKeyResponse__Output } from '../../weft/v1/SetWireGuardKeyResponse';
import type { Status as _weft_v1_Status, Status__Output as _weft_v1_Status__Output } from '../../weft/v1/Status';
import type { TopologyEvent as _weft_v1_TopologyEvent, TopologyEvent__Output as _weft_v1_TopologyEvent__Output } from '../../weft/v1/TopologyEvent';
import type { WatchServicesRequest as _weft_v1_WatchServicesRequest, WatchServicesRequest__Output as _weft_v1_WatchServicesRequest__Output } from '../../weft/v1/WatchServicesRequest';
import type { WatchTopologyRequest as _weft_v1_WatchTopologyRequest, WatchTopologyRequest__Output as _weft_v1_WatchTopologyRequest__Output } from '../../weft/v1/WatchTopologyRequest';

export interface ControllerClient extends grpc.Client {
  /**
   * Adds a gateway, or updates one: a new WAN endpoint, and a draining gateway back to active.
   */
  AddGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  AddGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  AddGateway(argument: _weft_v1_GatewayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  AddGateway(argument: _weft_v1_GatewayRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  /**
   * Adds a gateway, or updates one: a new WAN endpoint, and a draining gateway back to active.
   */
  addGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  addGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  addGateway(argument: _weft_v1_GatewayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  addGateway(argument: _weft_v1_GatewayRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Datacenters and their WireGuard gateways; admin only. Hosts learn them
   * from WatchTopology (gateways, WAN endpoints, public keys, subnets).
   */
  CreateDatacenter(argument: _weft_v1_CreateDatacenterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  CreateDatacenter(argument: _weft_v1_CreateDatacenterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  CreateDatacenter(argument: _weft_v1_CreateDatacenterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  CreateDatacenter(argument: _weft_v1_CreateDatacenterRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  /**
   * Datacenters and their WireGuard gateways; admin only. Hosts learn them
   * from WatchTopology (gateways, WAN endpoints, public keys, subnets).
   */
  createDatacenter(argument: _weft_v1_CreateDatacenterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  createDatacenter(argument: _weft_v1_CreateDatacenterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  createDatacenter(argument: _weft_v1_CreateDatacenterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  createDatacenter(argument: _weft_v1_CreateDatacenterRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  
  CreateService(argument: _weft_v1_CreateServiceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  CreateService(argument: _weft_v1_CreateServiceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  CreateService(argument: _weft_v1_CreateServiceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  CreateService(argument: _weft_v1_CreateServiceRequest, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  createService(argument: _weft_v1_CreateServiceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  createService(argument: _weft_v1_CreateServiceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  createService(argument: _weft_v1_CreateServiceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  createService(argument: _weft_v1_CreateServiceRequest, callback: grpc.requestCallback<_weft_v1_Service__Output>): grpc.ClientUnaryCall;
  
  DeleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  DeleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  DeleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  DeleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  deleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  deleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  deleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  deleteDatacenter(argument: _weft_v1_DeleteDatacenterRequest, callback: grpc.requestCallback<_weft_v1_DeleteDatacenterResponse__Output>): grpc.ClientUnaryCall;
  
  DeleteService(argument: _weft_v1_DeleteServiceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  DeleteService(argument: _weft_v1_DeleteServiceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  DeleteService(argument: _weft_v1_DeleteServiceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  DeleteService(argument: _weft_v1_DeleteServiceRequest, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  deleteService(argument: _weft_v1_DeleteServiceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  deleteService(argument: _weft_v1_DeleteServiceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  deleteService(argument: _weft_v1_DeleteServiceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  deleteService(argument: _weft_v1_DeleteServiceRequest, callback: grpc.requestCallback<_weft_v1_DeleteServiceResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The gateway stays but takes no new peers; the others carry its traffic.
   */
  DrainGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  DrainGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  DrainGateway(argument: _weft_v1_GatewayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  DrainGateway(argument: _weft_v1_GatewayRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  /**
   * The gateway stays but takes no new peers; the others carry its traffic.
   */
  drainGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  drainGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  drainGateway(argument: _weft_v1_GatewayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  drainGateway(argument: _weft_v1_GatewayRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  
  GetStatus(argument: _weft_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _weft_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _weft_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _weft_v1_GetStatusRequest, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _weft_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _weft_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _weft_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _weft_v1_GetStatusRequest, callback: grpc.requestCallback<_weft_v1_Status__Output>): grpc.ClientUnaryCall;
  
  /**
   * Renew the caller's leases and record liveness. Agents call it well within
   * the lease TTL (the response says when the next one is due).
   */
  Heartbeat(argument: _weft_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _weft_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _weft_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _weft_v1_HeartbeatRequest, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Renew the caller's leases and record liveness. Agents call it well within
   * the lease TTL (the response says when the next one is due).
   */
  heartbeat(argument: _weft_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _weft_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _weft_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _weft_v1_HeartbeatRequest, callback: grpc.requestCallback<_weft_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Exchange a bootstrap token for a client certificate. The host generates
   * its key pair and sends only the public key; the private key never leaves it.
   */
  Join(argument: _weft_v1_JoinRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  Join(argument: _weft_v1_JoinRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  Join(argument: _weft_v1_JoinRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  Join(argument: _weft_v1_JoinRequest, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Exchange a bootstrap token for a client certificate. The host generates
   * its key pair and sends only the public key; the private key never leaves it.
   */
  join(argument: _weft_v1_JoinRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  join(argument: _weft_v1_JoinRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  join(argument: _weft_v1_JoinRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  join(argument: _weft_v1_JoinRequest, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Remove the caller's host record and release its leases (graceful leave).
   */
  LeaveHost(argument: _weft_v1_LeaveHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  LeaveHost(argument: _weft_v1_LeaveHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  LeaveHost(argument: _weft_v1_LeaveHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  LeaveHost(argument: _weft_v1_LeaveHostRequest, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Remove the caller's host record and release its leases (graceful leave).
   */
  leaveHost(argument: _weft_v1_LeaveHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  leaveHost(argument: _weft_v1_LeaveHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  leaveHost(argument: _weft_v1_LeaveHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  leaveHost(argument: _weft_v1_LeaveHostRequest, callback: grpc.requestCallback<_weft_v1_LeaveHostResponse__Output>): grpc.ClientUnaryCall;
  
  ListDatacenters(argument: _weft_v1_ListDatacentersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  ListDatacenters(argument: _weft_v1_ListDatacentersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  ListDatacenters(argument: _weft_v1_ListDatacentersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  ListDatacenters(argument: _weft_v1_ListDatacentersRequest, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  listDatacenters(argument: _weft_v1_ListDatacentersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  listDatacenters(argument: _weft_v1_ListDatacentersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  listDatacenters(argument: _weft_v1_ListDatacentersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  listDatacenters(argument: _weft_v1_ListDatacentersRequest, callback: grpc.requestCallback<_weft_v1_ListDatacentersResponse__Output>): grpc.ClientUnaryCall;
  
  ListEndpoints(argument: _weft_v1_ListEndpointsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  ListEndpoints(argument: _weft_v1_ListEndpointsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  ListEndpoints(argument: _weft_v1_ListEndpointsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  ListEndpoints(argument: _weft_v1_ListEndpointsRequest, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listEndpoints(argument: _weft_v1_ListEndpointsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listEndpoints(argument: _weft_v1_ListEndpointsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listEndpoints(argument: _weft_v1_ListEndpointsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listEndpoints(argument: _weft_v1_ListEndpointsRequest, callback: grpc.requestCallback<_weft_v1_ListEndpointsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Every host with its subnets, health and the overlay summary its agent
   * last reported with a heartbeat; admin only (`weft hosts`).
   */
  ListHosts(argument: _weft_v1_ListHostsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  ListHosts(argument: _weft_v1_ListHostsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  ListHosts(argument: _weft_v1_ListHostsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  ListHosts(argument: _weft_v1_ListHostsRequest, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Every host with its subnets, health and the overlay summary its agent
   * last reported with a heartbeat; admin only (`weft hosts`).
   */
  listHosts(argument: _weft_v1_ListHostsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _weft_v1_ListHostsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _weft_v1_ListHostsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _weft_v1_ListHostsRequest, callback: grpc.requestCallback<_weft_v1_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  
  ListServices(argument: _weft_v1_ListServicesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  ListServices(argument: _weft_v1_ListServicesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  ListServices(argument: _weft_v1_ListServicesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  ListServices(argument: _weft_v1_ListServicesRequest, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  listServices(argument: _weft_v1_ListServicesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  listServices(argument: _weft_v1_ListServicesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  listServices(argument: _weft_v1_ListServicesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  listServices(argument: _weft_v1_ListServicesRequest, callback: grpc.requestCallback<_weft_v1_ListServicesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Per datacenter: gateways, their keys and peers' handshakes, and which
   * gateway the hosts of each datacenter chose towards each other one, from
   * what the agents last reported. Admin only (`weft datacenter list`).
   */
  ListTunnels(argument: _weft_v1_ListTunnelsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  ListTunnels(argument: _weft_v1_ListTunnelsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  ListTunnels(argument: _weft_v1_ListTunnelsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  ListTunnels(argument: _weft_v1_ListTunnelsRequest, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Per datacenter: gateways, their keys and peers' handshakes, and which
   * gateway the hosts of each datacenter chose towards each other one, from
   * what the agents last reported. Admin only (`weft datacenter list`).
   */
  listTunnels(argument: _weft_v1_ListTunnelsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  listTunnels(argument: _weft_v1_ListTunnelsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  listTunnels(argument: _weft_v1_ListTunnelsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  listTunnels(argument: _weft_v1_ListTunnelsRequest, callback: grpc.requestCallback<_weft_v1_ListTunnelsResponse__Output>): grpc.ClientUnaryCall;
  
  RegisterEndpoint(argument: _weft_v1_RegisterEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  RegisterEndpoint(argument: _weft_v1_RegisterEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  RegisterEndpoint(argument: _weft_v1_RegisterEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  RegisterEndpoint(argument: _weft_v1_RegisterEndpointRequest, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _weft_v1_RegisterEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _weft_v1_RegisterEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _weft_v1_RegisterEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  registerEndpoint(argument: _weft_v1_RegisterEndpointRequest, callback: grpc.requestCallback<_weft_v1_Endpoint__Output>): grpc.ClientUnaryCall;
  
  /**
   * Create or update the caller's host record and acquire (or renew) its
   * subnet lease in every requested network. Sticky: a returning host gets
   * its previous subnets back.
   */
  RegisterHost(argument: _weft_v1_RegisterHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  RegisterHost(argument: _weft_v1_RegisterHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  RegisterHost(argument: _weft_v1_RegisterHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  RegisterHost(argument: _weft_v1_RegisterHostRequest, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Create or update the caller's host record and acquire (or renew) its
   * subnet lease in every requested network. Sticky: a returning host gets
   * its previous subnets back.
   */
  registerHost(argument: _weft_v1_RegisterHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  registerHost(argument: _weft_v1_RegisterHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  registerHost(argument: _weft_v1_RegisterHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  registerHost(argument: _weft_v1_RegisterHostRequest, callback: grpc.requestCallback<_weft_v1_RegisterHostResponse__Output>): grpc.ClientUnaryCall;
  
  ReleaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  ReleaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  ReleaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  ReleaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  releaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  releaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  releaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  releaseEndpoint(argument: _weft_v1_ReleaseEndpointRequest, callback: grpc.requestCallback<_weft_v1_ReleaseEndpointResponse__Output>): grpc.ClientUnaryCall;
  
  RemoveGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  RemoveGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  RemoveGateway(argument: _weft_v1_GatewayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  RemoveGateway(argument: _weft_v1_GatewayRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  removeGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  removeGateway(argument: _weft_v1_GatewayRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  removeGateway(argument: _weft_v1_GatewayRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  removeGateway(argument: _weft_v1_GatewayRequest, callback: grpc.requestCallback<_weft_v1_DatacenterReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * A new certificate for the caller's own identity (host or ingress), for a
   * new key pair the caller made: only its public key is sent. Called over
   * the caller's current certificate at about half its lifetime. A caller
   * whose certificate expired while it was down (no mTLS identity) proves
   * possession of that certificate's key instead (expired), within the
   * controller's grace window; a revoked or deleted identity is refused.
   */
  RenewCertificate(argument: _weft_v1_RenewCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  RenewCertificate(argument: _weft_v1_RenewCertificateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  RenewCertificate(argument: _weft_v1_RenewCertificateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  RenewCertificate(argument: _weft_v1_RenewCertificateRequest, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  /**
   * A new certificate for the caller's own identity (host or ingress), for a
   * new key pair the caller made: only its public key is sent. Called over
   * the caller's current certificate at about half its lifetime. A caller
   * whose certificate expired while it was down (no mTLS identity) proves
   * possession of that certificate's key instead (expired), within the
   * controller's grace window; a revoked or deleted identity is refused.
   */
  renewCertificate(argument: _weft_v1_RenewCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  renewCertificate(argument: _weft_v1_RenewCertificateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  renewCertificate(argument: _weft_v1_RenewCertificateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  renewCertificate(argument: _weft_v1_RenewCertificateRequest, callback: grpc.requestCallback<_weft_v1_JoinResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Asks hosts to rotate their WireGuard keys: bumps each one's
   * wg_key_rotation, which its agent sees in WatchTopology. Admin only.
   */
  RotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  RotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  RotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  RotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Asks hosts to rotate their WireGuard keys: bumps each one's
   * wg_key_rotation, which its agent sees in WatchTopology. Admin only.
   */
  rotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  rotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  rotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  rotateWireGuardKeys(argument: _weft_v1_RotateWireGuardKeysRequest, callback: grpc.requestCallback<_weft_v1_RotateWireGuardKeysResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Key rotation, called by a gateway host for itself (name must be the
   * caller): drain its own gateway entries before it changes its WireGuard
   * key, activate them again after. The last active gateway of a datacenter
   * cannot be drained: FAILED_PRECONDITION with trailer weft-code
   * WEFT_GATEWAY_LAST_ACTIVE, and nothing is written.
   */
  SetOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  SetOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  SetOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  SetOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Key rotation, called by a gateway host for itself (name must be the
   * caller): drain its own gateway entries before it changes its WireGuard
   * key, activate them again after. The last active gateway of a datacenter
   * cannot be drained: FAILED_PRECONDITION with trailer weft-code
   * WEFT_GATEWAY_LAST_ACTIVE, and nothing is written.
   */
  setOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  setOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  setOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  setOwnGatewayState(argument: _weft_v1_SetOwnGatewayStateRequest, callback: grpc.requestCallback<_weft_v1_SetOwnGatewayStateResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The caller's new WireGuard public key (the private key stays on the
   * host). Unique among hosts like in RegisterHost; the old key is freed in
   * the same write.
   */
  SetWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  SetWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  SetWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  SetWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The caller's new WireGuard public key (the private key stays on the
   * host). Unique among hosts like in RegisterHost; the old key is freed in
   * the same write.
   */
  setWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  setWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  setWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  setWireGuardKey(argument: _weft_v1_SetWireGuardKeyRequest, callback: grpc.requestCallback<_weft_v1_SetWireGuardKeyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Services with their current backends: a snapshot, then changes.
   */
  WatchServices(argument: _weft_v1_WatchServicesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_ServiceEvent__Output>;
  WatchServices(argument: _weft_v1_WatchServicesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_ServiceEvent__Output>;
  /**
   * Services with their current backends: a snapshot, then changes.
   */
  watchServices(argument: _weft_v1_WatchServicesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_ServiceEvent__Output>;
  watchServices(argument: _weft_v1_WatchServicesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_ServiceEvent__Output>;
  
  /**
   * Hosts, their subnets and the cluster config: a snapshot, then changes.
   */
  WatchTopology(argument: _weft_v1_WatchTopologyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_TopologyEvent__Output>;
  WatchTopology(argument: _weft_v1_WatchTopologyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_TopologyEvent__Output>;
  /**
   * Hosts, their subnets and the cluster config: a snapshot, then changes.
   */
  watchTopology(argument: _weft_v1_WatchTopologyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_TopologyEvent__Output>;
  watchTopology(argument: _weft_v1_WatchTopologyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_weft_v1_TopologyEvent__Output>;
  
}

export interface ControllerHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Adds a gateway, or updates one: a new WAN endpoint, and a draining gateway back to active.
   */
  AddGateway: grpc.handleUnaryCall<_weft_v1_GatewayRequest__Output, _weft_v1_DatacenterReply>;
  
  /**
   * Datacenters and their WireGuard gateways; admin only. Hosts learn them
   * from WatchTopology (gateways, WAN endpoints, public keys, subnets).
   */
  CreateDatacenter: grpc.handleUnaryCall<_weft_v1_CreateDatacenterRequest__Output, _weft_v1_DatacenterReply>;
  
  CreateService: grpc.handleUnaryCall<_weft_v1_CreateServiceRequest__Output, _weft_v1_Service>;
  
  DeleteDatacenter: grpc.handleUnaryCall<_weft_v1_DeleteDatacenterRequest__Output, _weft_v1_DeleteDatacenterResponse>;
  
  DeleteService: grpc.handleUnaryCall<_weft_v1_DeleteServiceRequest__Output, _weft_v1_DeleteServiceResponse>;
  
  /**
   * The gateway stays but takes no new peers; the others carry its traffic.
   */
  DrainGateway: grpc.handleUnaryCall<_weft_v1_GatewayRequest__Output, _weft_v1_DatacenterReply>;
  
  GetStatus: grpc.handleUnaryCall<_weft_v1_GetStatusRequest__Output, _weft_v1_Status>;
  
  /**
   * Renew the caller's leases and record liveness. Agents call it well within
   * the lease TTL (the response says when the next one is due).
   */
  Heartbeat: grpc.handleUnaryCall<_weft_v1_HeartbeatRequest__Output, _weft_v1_HeartbeatResponse>;
  
  /**
   * Exchange a bootstrap token for a client certificate. The host generates
   * its key pair and sends only the public key; the private key never leaves it.
   */
  Join: grpc.handleUnaryCall<_weft_v1_JoinRequest__Output, _weft_v1_JoinResponse>;
  
  /**
   * Remove the caller's host record and release its leases (graceful leave).
   */
  LeaveHost: grpc.handleUnaryCall<_weft_v1_LeaveHostRequest__Output, _weft_v1_LeaveHostResponse>;
  
  ListDatacenters: grpc.handleUnaryCall<_weft_v1_ListDatacentersRequest__Output, _weft_v1_ListDatacentersResponse>;
  
  ListEndpoints: grpc.handleUnaryCall<_weft_v1_ListEndpointsRequest__Output, _weft_v1_ListEndpointsResponse>;
  
  /**
   * Every host with its subnets, health and the overlay summary its agent
   * last reported with a heartbeat; admin only (`weft hosts`).
   */
  ListHosts: grpc.handleUnaryCall<_weft_v1_ListHostsRequest__Output, _weft_v1_ListHostsResponse>;
  
  ListServices: grpc.handleUnaryCall<_weft_v1_ListServicesRequest__Output, _weft_v1_ListServicesResponse>;
  
  /**
   * Per datacenter: gateways, their keys and peers' handshakes, and which
   * gateway the hosts of each datacenter chose towards each other one, from
   * what the agents last reported. Admin only (`weft datacenter list`).
   */
  ListTunnels: grpc.handleUnaryCall<_weft_v1_ListTunnelsRequest__Output, _weft_v1_ListTunnelsResponse>;
  
  RegisterEndpoint: grpc.handleUnaryCall<_weft_v1_RegisterEndpointRequest__Output, _weft_v1_Endpoint>;
  
  /**
   * Create or update the caller's host record and acquire (or renew) its
   * subnet lease in every requested network. Sticky: a returning host gets
   * its previous subnets back.
   */
  RegisterHost: grpc.handleUnaryCall<_weft_v1_RegisterHostRequest__Output, _weft_v1_RegisterHostResponse>;
  
  ReleaseEndpoint: grpc.handleUnaryCall<_weft_v1_ReleaseEndpointRequest__Output, _weft_v1_ReleaseEndpointResponse>;
  
  RemoveGateway: grpc.handleUnaryCall<_weft_v1_GatewayRequest__Output, _weft_v1_DatacenterReply>;
  
  /**
   * A new certificate for the caller's own identity (host or ingress), for a
   * new key pair the caller made: only its public key is sent. Called over
   * the caller's current certificate at about half its lifetime. A caller
   * whose certificate expired while it was down (no mTLS identity) proves
   * possession of that certificate's key instead (expired), within the
   * controller's grace window; a revoked or deleted identity is refused.
   */
  RenewCertificate: grpc.handleUnaryCall<_weft_v1_RenewCertificateRequest__Output, _weft_v1_JoinResponse>;
  
  /**
   * Asks hosts to rotate their WireGuard keys: bumps each one's
   * wg_key_rotation, which its agent sees in WatchTopology. Admin only.
   */
  RotateWireGuardKeys: grpc.handleUnaryCall<_weft_v1_RotateWireGuardKeysRequest__Output, _weft_v1_RotateWireGuardKeysResponse>;
  
  /**
   * Key rotation, called by a gateway host for itself (name must be the
   * caller): drain its own gateway entries before it changes its WireGuard
   * key, activate them again after. The last active gateway of a datacenter
   * cannot be drained: FAILED_PRECONDITION with trailer weft-code
   * WEFT_GATEWAY_LAST_ACTIVE, and nothing is written.
   */
  SetOwnGatewayState: grpc.handleUnaryCall<_weft_v1_SetOwnGatewayStateRequest__Output, _weft_v1_SetOwnGatewayStateResponse>;
  
  /**
   * The caller's new WireGuard public key (the private key stays on the
   * host). Unique among hosts like in RegisterHost; the old key is freed in
   * the same write.
   */
  SetWireGuardKey: grpc.handleUnaryCall<_weft_v1_SetWireGuardKeyRequest__Output, _weft_v1_SetWireGuardKeyResponse>;
  
  /**
   * Services with their current backends: a snapshot, then changes.
   */
  WatchServices: grpc.handleServerStreamingCall<_weft_v1_WatchServicesRequest__Output, _weft_v1_ServiceEvent>;
  
  /**
   * Hosts, their subnets and the cluster config: a snapshot, then changes.
   */
  WatchTopology: grpc.handleServerStreamingCall<_weft_v1_WatchTopologyRequest__Output, _weft_v1_TopologyEvent>;
  
}

export interface ControllerDefinition extends grpc.ServiceDefinition {
  AddGateway: MethodDefinition<_weft_v1_GatewayRequest, _weft_v1_DatacenterReply, _weft_v1_GatewayRequest__Output, _weft_v1_DatacenterReply__Output>
  CreateDatacenter: MethodDefinition<_weft_v1_CreateDatacenterRequest, _weft_v1_DatacenterReply, _weft_v1_CreateDatacenterRequest__Output, _weft_v1_DatacenterReply__Output>
  CreateService: MethodDefinition<_weft_v1_CreateServiceRequest, _weft_v1_Service, _weft_v1_CreateServiceRequest__Output, _weft_v1_Service__Output>
  DeleteDatacenter: MethodDefinition<_weft_v1_DeleteDatacenterRequest, _weft_v1_DeleteDatacenterResponse, _weft_v1_DeleteDatacenterRequest__Output, _weft_v1_DeleteDatacenterResponse__Output>
  DeleteService: MethodDefinition<_weft_v1_DeleteServiceRequest, _weft_v1_DeleteServiceResponse, _weft_v1_DeleteServiceRequest__Output, _weft_v1_DeleteServiceResponse__Output>
  DrainGateway: MethodDefinition<_weft_v1_GatewayRequest, _weft_v1_DatacenterReply, _weft_v1_GatewayRequest__Output, _weft_v1_DatacenterReply__Output>
  GetStatus: MethodDefinition<_weft_v1_GetStatusRequest, _weft_v1_Status, _weft_v1_GetStatusRequest__Output, _weft_v1_Status__Output>
  Heartbeat: MethodDefinition<_weft_v1_HeartbeatRequest, _weft_v1_HeartbeatResponse, _weft_v1_HeartbeatRequest__Output, _weft_v1_HeartbeatResponse__Output>
  Join: MethodDefinition<_weft_v1_JoinRequest, _weft_v1_JoinResponse, _weft_v1_JoinRequest__Output, _weft_v1_JoinResponse__Output>
  LeaveHost: MethodDefinition<_weft_v1_LeaveHostRequest, _weft_v1_LeaveHostResponse, _weft_v1_LeaveHostRequest__Output, _weft_v1_LeaveHostResponse__Output>
  ListDatacenters: MethodDefinition<_weft_v1_ListDatacentersRequest, _weft_v1_ListDatacentersResponse, _weft_v1_ListDatacentersRequest__Output, _weft_v1_ListDatacentersResponse__Output>
  ListEndpoints: MethodDefinition<_weft_v1_ListEndpointsRequest, _weft_v1_ListEndpointsResponse, _weft_v1_ListEndpointsRequest__Output, _weft_v1_ListEndpointsResponse__Output>
  ListHosts: MethodDefinition<_weft_v1_ListHostsRequest, _weft_v1_ListHostsResponse, _weft_v1_ListHostsRequest__Output, _weft_v1_ListHostsResponse__Output>
  ListServices: MethodDefinition<_weft_v1_ListServicesRequest, _weft_v1_ListServicesResponse, _weft_v1_ListServicesRequest__Output, _weft_v1_ListServicesResponse__Output>
  ListTunnels: MethodDefinition<_weft_v1_ListTunnelsRequest, _weft_v1_ListTunnelsResponse, _weft_v1_ListTunnelsRequest__Output, _weft_v1_ListTunnelsResponse__Output>
  RegisterEndpoint: MethodDefinition<_weft_v1_RegisterEndpointRequest, _weft_v1_Endpoint, _weft_v1_RegisterEndpointRequest__Output, _weft_v1_Endpoint__Output>
  RegisterHost: MethodDefinition<_weft_v1_RegisterHostRequest, _weft_v1_RegisterHostResponse, _weft_v1_RegisterHostRequest__Output, _weft_v1_RegisterHostResponse__Output>
  ReleaseEndpoint: MethodDefinition<_weft_v1_ReleaseEndpointRequest, _weft_v1_ReleaseEndpointResponse, _weft_v1_ReleaseEndpointRequest__Output, _weft_v1_ReleaseEndpointResponse__Output>
  RemoveGateway: MethodDefinition<_weft_v1_GatewayRequest, _weft_v1_DatacenterReply, _weft_v1_GatewayRequest__Output, _weft_v1_DatacenterReply__Output>
  RenewCertificate: MethodDefinition<_weft_v1_RenewCertificateRequest, _weft_v1_JoinResponse, _weft_v1_RenewCertificateRequest__Output, _weft_v1_JoinResponse__Output>
  RotateWireGuardKeys: MethodDefinition<_weft_v1_RotateWireGuardKeysRequest, _weft_v1_RotateWireGuardKeysResponse, _weft_v1_RotateWireGuardKeysRequest__Output, _weft_v1_RotateWireGuardKeysResponse__Output>
  SetOwnGatewayState: MethodDefinition<_weft_v1_SetOwnGatewayStateRequest, _weft_v1_SetOwnGatewayStateResponse, _weft_v1_SetOwnGatewayStateRequest__Output, _weft_v1_SetOwnGatewayStateResponse__Output>
  SetWireGuardKey: MethodDefinition<_weft_v1_SetWireGuardKeyRequest, _weft_v1_SetWireGuardKeyResponse, _weft_v1_SetWireGuardKeyRequest__Output, _weft_v1_SetWireGuardKeyResponse__Output>
  WatchServices: MethodDefinition<_weft_v1_WatchServicesRequest, _weft_v1_ServiceEvent, _weft_v1_WatchServicesRequest__Output, _weft_v1_ServiceEvent__Output>
  WatchTopology: MethodDefinition<_weft_v1_WatchTopologyRequest, _weft_v1_TopologyEvent, _weft_v1_WatchTopologyRequest__Output, _weft_v1_TopologyEvent__Output>
}
