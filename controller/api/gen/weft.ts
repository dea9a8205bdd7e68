import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Backend as _weft_v1_Backend, Backend__Output as _weft_v1_Backend__Output } from './weft/v1/Backend';
import type { ClusterConfig as _weft_v1_ClusterConfig, ClusterConfig__Output as _weft_v1_ClusterConfig__Output } from './weft/v1/ClusterConfig';
import type { ControllerClient as _weft_v1_ControllerClient, ControllerDefinition as _weft_v1_ControllerDefinition } from './weft/v1/Controller';
import type { CreateDatacenterRequest as _weft_v1_CreateDatacenterRequest, CreateDatacenterRequest__Output as _weft_v1_CreateDatacenterRequest__Output } from './weft/v1/CreateDatacenterRequest';
import type { CreateServiceRequest as _weft_v1_CreateServiceRequest, CreateServiceRequest__Output as _weft_v1_CreateServiceRequest__Output } from './weft/v1/CreateServiceRequest';
import type { Datacenter as _weft_v1_Datacenter, Datacenter__Output as _weft_v1_Datacenter__Output } from './weft/v1/Datacenter';
import type { DatacenterGateway as _weft_v1_DatacenterGateway, DatacenterGateway__Output as _weft_v1_DatacenterGateway__Output } from './weft/v1/DatacenterGateway';
import type { DatacenterReply as _weft_v1_DatacenterReply, DatacenterReply__Output as _weft_v1_DatacenterReply__Output } from './weft/v1/DatacenterReply';
import type { DatacenterSubnet as _weft_v1_DatacenterSubnet, DatacenterSubnet__Output as _weft_v1_DatacenterSubnet__Output } from './weft/v1/DatacenterSubnet';
import type { DatacenterTunnels as _weft_v1_DatacenterTunnels, DatacenterTunnels__Output as _weft_v1_DatacenterTunnels__Output } from './weft/v1/DatacenterTunnels';
import type { DeleteDatacenterRequest as _weft_v1_DeleteDatacenterRequest, DeleteDatacenterRequest__Output as _weft_v1_DeleteDatacenterRequest__Output } from './weft/v1/DeleteDatacenterRequest';
import type { DeleteDatacenterResponse as _weft_v1_DeleteDatacenterResponse, DeleteDatacenterResponse__Output as _weft_v1_DeleteDatacenterResponse__Output } from './weft/v1/DeleteDatacenterResponse';
import type { DeleteServiceRequest as _weft_v1_DeleteServiceRequest, DeleteServiceRequest__Output as _weft_v1_DeleteServiceRequest__Output } from './weft/v1/DeleteServiceRequest';
import type { DeleteServiceResponse as _weft_v1_DeleteServiceResponse, DeleteServiceResponse__Output as _weft_v1_DeleteServiceResponse__Output } from './weft/v1/DeleteServiceResponse';
import type { Endpoint as _weft_v1_Endpoint, Endpoint__Output as _weft_v1_Endpoint__Output } from './weft/v1/Endpoint';
import type { GatewayRequest as _weft_v1_GatewayRequest, GatewayRequest__Output as _weft_v1_GatewayRequest__Output } from './weft/v1/GatewayRequest';
import type { GatewaySpec as _weft_v1_GatewaySpec, GatewaySpec__Output as _weft_v1_GatewaySpec__Output } from './weft/v1/GatewaySpec';
import type { GatewayTunnels as _weft_v1_GatewayTunnels, GatewayTunnels__Output as _weft_v1_GatewayTunnels__Output } from './weft/v1/GatewayTunnels';
import type { GetStatusRequest as _weft_v1_GetStatusRequest, GetStatusRequest__Output as _weft_v1_GetStatusRequest__Output } from './weft/v1/GetStatusRequest';
import type { HeartbeatRequest as _weft_v1_HeartbeatRequest, HeartbeatRequest__Output as _weft_v1_HeartbeatRequest__Output } from './weft/v1/HeartbeatRequest';
import type { HeartbeatResponse as _weft_v1_HeartbeatResponse, HeartbeatResponse__Output as _weft_v1_HeartbeatResponse__Output } from './weft/v1/HeartbeatResponse';
import type { Host as _weft_v1_Host, Host__Output as _weft_v1_Host__Output } from './weft/v1/Host';
import type { HostStatus as _weft_v1_HostStatus, HostStatus__Output as _weft_v1_HostStatus__Output } from './weft/v1/HostStatus';
import type { HostSubnet as _weft_v1_HostSubnet, HostSubnet__Output as _weft_v1_HostSubnet__Output } from './weft/v1/HostSubnet';
import type { JoinRequest as _weft_v1_JoinRequest, JoinRequest__Output as _weft_v1_JoinRequest__Output } from './weft/v1/JoinRequest';
import type { JoinResponse as _weft_v1_JoinResponse, JoinResponse__Output as _weft_v1_JoinResponse__Output } from './weft/v1/JoinResponse';
import type { LeaveHostRequest as _weft_v1_LeaveHostRequest, LeaveHostRequest__Output as _weft_v1_LeaveHostRequest__Output } from './weft/v1/LeaveHostRequest';
import type { LeaveHostResponse as _weft_v1_LeaveHostResponse, LeaveHostResponse__Output as _weft_v1_LeaveHostResponse__Output } from './weft/v1/LeaveHostResponse';
import type { ListDatacentersRequest as _weft_v1_ListDatacentersRequest, ListDatacentersRequest__Output as _weft_v1_ListDatacentersRequest__Output } from './weft/v1/ListDatacentersRequest';
import type { ListDatacentersResponse as _weft_v1_ListDatacentersResponse, ListDatacentersResponse__Output as _weft_v1_ListDatacentersResponse__Output } from './weft/v1/ListDatacentersResponse';
import type { ListEndpointsRequest as _weft_v1_ListEndpointsRequest, ListEndpointsRequest__Output as _weft_v1_ListEndpointsRequest__Output } from './weft/v1/ListEndpointsRequest';
import type { ListEndpointsResponse as _weft_v1_ListEndpointsResponse, ListEndpointsResponse__Output as _weft_v1_ListEndpointsResponse__Output } from './weft/v1/ListEndpointsResponse';
import type { ListHostsRequest as _weft_v1_ListHostsRequest, ListHostsRequest__Output as _weft_v1_ListHostsRequest__Output } from './weft/v1/ListHostsRequest';
import type { ListHostsResponse as _weft_v1_ListHostsResponse, ListHostsResponse__Output as _weft_v1_ListHostsResponse__Output } from './weft/v1/ListHostsResponse';
import type { ListServicesRequest as _weft_v1_ListServicesRequest, ListServicesRequest__Output as _weft_v1_ListServicesRequest__Output } from './weft/v1/ListServicesRequest';
import type { ListServicesResponse as _weft_v1_ListServicesResponse, ListServicesResponse__Output as _weft_v1_ListServicesResponse__Output } from './weft/v1/ListServicesResponse';
import type { ListTunnelsRequest as _weft_v1_ListTunnelsRequest, ListTunnelsRequest__Output as _weft_v1_ListTunnelsRequest__Output } from './weft/v1/ListTunnelsRequest';
import type { ListTunnelsResponse as _weft_v1_ListTunnelsResponse, ListTunnelsResponse__Output as _weft_v1_ListTunnelsResponse__Output } from './weft/v1/ListTunnelsResponse';
import type { Network as _weft_v1_Network, Network__Output as _weft_v1_Network__Output } from './weft/v1/Network';
import type { OverlayReport as _weft_v1_OverlayReport, OverlayReport__Output as _weft_v1_OverlayReport__Output } from './weft/v1/OverlayReport';
import type { PossessionProof as _weft_v1_PossessionProof, PossessionProof__Output as _weft_v1_PossessionProof__Output } from './weft/v1/PossessionProof';
import type { RegisterEndpointRequest as _weft_v1_RegisterEndpointRequest, RegisterEndpointRequest__Output as _weft_v1_RegisterEndpointRequest__Output } from './weft/v1/RegisterEndpointRequest';
import type { RegisterHostRequest as _weft_v1_RegisterHostRequest, RegisterHostRequest__Output as _weft_v1_RegisterHostRequest__Output } from './weft/v1/RegisterHostRequest';
import type { RegisterHostResponse as _weft_v1_RegisterHostResponse, RegisterHostResponse__Output as _weft_v1_RegisterHostResponse__Output } from './weft/v1/RegisterHostResponse';
import type { ReleaseEndpointRequest as _weft_v1_ReleaseEndpointRequest, ReleaseEndpointRequest__Output as _weft_v1_ReleaseEndpointRequest__Output } from './weft/v1/ReleaseEndpointRequest';
import type { ReleaseEndpointResponse as _weft_v1_ReleaseEndpointResponse, ReleaseEndpointResponse__Output as _weft_v1_ReleaseEndpointResponse__Output } from './weft/v1/ReleaseEndpointResponse';
import type { RenewCertificateRequest as _weft_v1_RenewCertificateRequest, RenewCertificateRequest__Output as _weft_v1_RenewCertificateRequest__Output } from './weft/v1/RenewCertificateRequest';
import type { RotateWireGuardKeysRequest as _weft_v1_RotateWireGuardKeysRequest, RotateWireGuardKeysRequest__Output as _weft_v1_RotateWireGuardKeysRequest__Output } from './weft/v1/RotateWireGuardKeysRequest';
import type { RotateWireGuardKeysResponse as _weft_v1_RotateWireGuardKeysResponse, RotateWireGuardKeysResponse__Output as _weft_v1_RotateWireGuardKeysResponse__Output } from './weft/v1/RotateWireGuardKeysResponse';
import type { RotationAsked as _weft_v1_RotationAsked, RotationAsked__Output as _weft_v1_RotationAsked__Output } from './weft/v1/RotationAsked';
import type { Service as _weft_v1_Service, Service__Output as _weft_v1_Service__Output } from './weft/v1/Service';
import type { ServiceEvent as _weft_v1_ServiceEvent, ServiceEvent__Output as _weft_v1_ServiceEvent__Output } from './weft/v1/ServiceEvent';
import type { ServicePort as _weft_v1_ServicePort, ServicePort__Output as _weft_v1_ServicePort__Output } from './weft/v1/ServicePort';
import type { ServiceState as _weft_v1_ServiceState, ServiceState__Output as _weft_v1_ServiceState__Output } from './weft/v1/ServiceState';
import type { SetOwnGatewayStateRequest as _weft_v1_SetOwnGatewayStateRequest, SetOwnGatewayStateRequest__Output as _weft_v1_SetOwnGatewayStateRequest__Output } from './weft/v1/SetOwnGatewayStateRequest';
import type { SetOwnGatewayStateResponse as _weft_v1_SetOwnGatewayStateResponse, SetOwnGatewayStateResponse__Output as _weft_v1_SetOwnGatewayStateResponse__Output } from './weft/v1/SetOwnGatewayStateResponse';
import type { SetWireGuardKeyRequest as _weft_v1_SetWireGuardKeyRequest, SetWireGuardKeyRequest__Output as _weft_v1_SetWireGuardKeyRequest__Output } from './weft/v1/SetWireGuardKeyRequest';
import type { SetWireGuardKeyResponse as _weft_v1_SetWireGuardKeyResponse, SetWireGuardKeyResponse__Output as _weft_v1_SetWireGuardKeyResponse__Output } from './weft/v1/SetWireGuardKeyResponse';
import type { Status as _weft_v1_Status, Status__Output as _weft_v1_Status__Output } from './weft/v1/Status';
import type { TopologyEvent as _weft_v1_TopologyEvent, TopologyEvent__Output as _weft_v1_TopologyEvent__Output } from './weft/v1/TopologyEvent';
import type { TunnelPath as _weft_v1_TunnelPath, TunnelPath__Output as _weft_v1_TunnelPath__Output } from './weft/v1/TunnelPath';
import type { TunnelPathSummary as _weft_v1_TunnelPathSummary, TunnelPathSummary__Output as _weft_v1_TunnelPathSummary__Output } from './weft/v1/TunnelPathSummary';
import type { TunnelPeer as _weft_v1_TunnelPeer, TunnelPeer__Output as _weft_v1_TunnelPeer__Output } from './weft/v1/TunnelPeer';
import type { TunnelReport as _weft_v1_TunnelReport, TunnelReport__Output as _weft_v1_TunnelReport__Output } from './weft/v1/TunnelReport';
import type { WatchServicesRequest as _weft_v1_WatchServicesRequest, WatchServicesRequest__Output as _weft_v1_WatchServicesRequest__Output } from './weft/v1/WatchServicesRequest';
import type { WatchTopologyRequest as _weft_v1_WatchTopologyRequest, WatchTopologyRequest__Output as _weft_v1_WatchTopologyRequest__Output } from './weft/v1/WatchTopologyRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  weft: {
    v1: {
      Backend: MessageTypeDefinition<_weft_v1_Backend, _weft_v1_Backend__Output>
      ClusterConfig: MessageTypeDefinition<_weft_v1_ClusterConfig, _weft_v1_ClusterConfig__Output>
      Controller: SubtypeConstructor<typeof grpc.Client, _weft_v1_ControllerClient> & { service: _weft_v1_ControllerDefinition }
      CreateDatacenterRequest: MessageTypeDefinition<_weft_v1_CreateDatacenterRequest, _weft_v1_CreateDatacenterRequest__Output>
      CreateServiceRequest: MessageTypeDefinition<_weft_v1_CreateServiceRequest, _weft_v1_CreateServiceRequest__Output>
      Datacenter: MessageTypeDefinition<_weft_v1_Datacenter, _weft_v1_Datacenter__Output>
      DatacenterGateway: MessageTypeDefinition<_weft_v1_DatacenterGateway, _weft_v1_DatacenterGateway__Output>
      DatacenterReply: MessageTypeDefinition<_weft_v1_DatacenterReply, _weft_v1_DatacenterReply__Output>
      DatacenterSubnet: MessageTypeDefinition<_weft_v1_DatacenterSubnet, _weft_v1_DatacenterSubnet__Output>
      DatacenterTunnels: MessageTypeDefinition<_weft_v1_DatacenterTunnels, _weft_v1_DatacenterTunnels__Output>
      DeleteDatacenterRequest: MessageTypeDefinition<_weft_v1_DeleteDatacenterRequest, _weft_v1_DeleteDatacenterRequest__Output>
      DeleteDatacenterResponse: MessageTypeDefinition<_weft_v1_DeleteDatacenterResponse, _weft_v1_DeleteDatacenterResponse__Output>
      DeleteServiceRequest: MessageTypeDefinition<_weft_v1_DeleteServiceRequest, _weft_v1_DeleteServiceRequest__Output>
      DeleteServiceResponse: MessageTypeDefinition<_weft_v1_DeleteServiceResponse, _weft_v1_DeleteServiceResponse__Output>
      Endpoint: MessageTypeDefinition<_weft_v1_Endpoint, _weft_v1_Endpoint__Output>
      GatewayRequest: MessageTypeDefinition<_weft_v1_GatewayRequest, _weft_v1_GatewayRequest__Output>
      GatewaySpec: MessageTypeDefinition<_weft_v1_GatewaySpec, _weft_v1_GatewaySpec__Output>
      GatewayTunnels: MessageTypeDefinition<_weft_v1_GatewayTunnels, _weft_v1_GatewayTunnels__Output>
      GetStatusRequest: MessageTypeDefinition<_weft_v1_GetStatusRequest, _weft_v1_GetStatusRequest__Output>
      HeartbeatRequest: MessageTypeDefinition<_weft_v1_HeartbeatRequest, _weft_v1_HeartbeatRequest__Output>
      HeartbeatResponse: MessageTypeDefinition<_weft_v1_HeartbeatResponse, _weft_v1_HeartbeatResponse__Output>
      Host: MessageTypeDefinition<_weft_v1_Host, _weft_v1_Host__Output>
      HostStatus: MessageTypeDefinition<_weft_v1_HostStatus, _weft_v1_HostStatus__Output>
      HostSubnet: MessageTypeDefinition<_weft_v1_HostSubnet, _weft_v1_HostSubnet__Output>
      JoinRequest: MessageTypeDefinition<_weft_v1_JoinRequest, _weft_v1_JoinRequest__Output>
      JoinResponse: MessageTypeDefinition<_weft_v1_JoinResponse, _weft_v1_JoinResponse__Output>
      LeaveHostRequest: MessageTypeDefinition<_weft_v1_LeaveHostRequest, _weft_v1_LeaveHostRequest__Output>
      LeaveHostResponse: MessageTypeDefinition<_weft_v1_LeaveHostResponse, _weft_v1_LeaveHostResponse__Output>
      ListDatacentersRequest: MessageTypeDefinition<_weft_v1_ListDatacentersRequest, _weft_v1_ListDatacentersRequest__Output>
      ListDatacentersResponse: MessageTypeDefinition<_weft_v1_ListDatacentersResponse, _weft_v1_ListDatacentersResponse__Output>
      ListEndpointsRequest: MessageTypeDefinition<_weft_v1_ListEndpointsRequest, _weft_v1_ListEndpointsRequest__Output>
      ListEndpointsResponse: MessageTypeDefinition<_weft_v1_ListEndpointsResponse, _weft_v1_ListEndpointsResponse__Output>
      ListHostsRequest: MessageTypeDefinition<_weft_v1_ListHostsRequest, _weft_v1_ListHostsRequest__Output>
      ListHostsResponse: MessageTypeDefinition<_weft_v1_ListHostsResponse, _weft_v1_ListHostsResponse__Output>
      ListServicesRequest: MessageTypeDefinition<_weft_v1_ListServicesRequest, _weft_v1_ListServicesRequest__Output>
      ListServicesResponse: MessageTypeDefinition<_weft_v1_ListServicesResponse, _weft_v1_ListServicesResponse__Output>
      ListTunnelsRequest: MessageTypeDefinition<_weft_v1_ListTunnelsRequest, _weft_v1_ListTunnelsRequest__Output>
      ListTunnelsResponse: MessageTypeDefinition<_weft_v1_ListTunnelsResponse, _weft_v1_ListTunnelsResponse__Output>
      Network: MessageTypeDefinition<_weft_v1_Network, _weft_v1_Network__Output>
      OverlayReport: MessageTypeDefinition<_weft_v1_OverlayReport, _weft_v1_OverlayReport__Output>
      PossessionProof: MessageTypeDefinition<_weft_v1_PossessionProof, _weft_v1_PossessionProof__Output>
      RegisterEndpointRequest: MessageTypeDefinition<_weft_v1_RegisterEndpointRequest, _weft_v1_RegisterEndpointRequest__Output>
      RegisterHostRequest: MessageTypeDefinition<_weft_v1_RegisterHostRequest, _weft_v1_RegisterHostRequest__Output>
      RegisterHostResponse: MessageTypeDefinition<_weft_v1_RegisterHostResponse, _weft_v1_RegisterHostResponse__Output>
      ReleaseEndpointRequest: MessageTypeDefinition<_weft_v1_ReleaseEndpointRequest, _weft_v1_ReleaseEndpointRequest__Output>
      ReleaseEndpointResponse: MessageTypeDefinition<_weft_v1_ReleaseEndpointResponse, _weft_v1_ReleaseEndpointResponse__Output>
      RenewCertificateRequest: MessageTypeDefinition<_weft_v1_RenewCertificateRequest, _weft_v1_RenewCertificateRequest__Output>
      RotateWireGuardKeysRequest: MessageTypeDefinition<_weft_v1_RotateWireGuardKeysRequest, _weft_v1_RotateWireGuardKeysRequest__Output>
      RotateWireGuardKeysResponse: MessageTypeDefinition<_weft_v1_RotateWireGuardKeysResponse, _weft_v1_RotateWireGuardKeysResponse__Output>
      RotationAsked: MessageTypeDefinition<_weft_v1_RotationAsked, _weft_v1_RotationAsked__Output>
      Service: MessageTypeDefinition<_weft_v1_Service, _weft_v1_Service__Output>
      ServiceEvent: MessageTypeDefinition<_weft_v1_ServiceEvent, _weft_v1_ServiceEvent__Output>
      ServicePort: MessageTypeDefinition<_weft_v1_ServicePort, _weft_v1_ServicePort__Output>
      ServiceState: MessageTypeDefinition<_weft_v1_ServiceState, _weft_v1_ServiceState__Output>
      SetOwnGatewayStateRequest: MessageTypeDefinition<_weft_v1_SetOwnGatewayStateRequest, _weft_v1_SetOwnGatewayStateRequest__Output>
      SetOwnGatewayStateResponse: MessageTypeDefinition<_weft_v1_SetOwnGatewayStateResponse, _weft_v1_SetOwnGatewayStateResponse__Output>
      SetWireGuardKeyRequest: MessageTypeDefinition<_weft_v1_SetWireGuardKeyRequest, _weft_v1_SetWireGuardKeyRequest__Output>
      SetWireGuardKeyResponse: MessageTypeDefinition<_weft_v1_SetWireGuardKeyResponse, _weft_v1_SetWireGuardKeyResponse__Output>
      Status: MessageTypeDefinition<_weft_v1_Status, _weft_v1_Status__Output>
      TopologyEvent: MessageTypeDefinition<_weft_v1_TopologyEvent, _weft_v1_TopologyEvent__Output>
      TunnelPath: MessageTypeDefinition<_weft_v1_TunnelPath, _weft_v1_TunnelPath__Output>
      TunnelPathSummary: MessageTypeDefinition<_weft_v1_TunnelPathSummary, _weft_v1_TunnelPathSummary__Output>
      TunnelPeer: MessageTypeDefinition<_weft_v1_TunnelPeer, _weft_v1_TunnelPeer__Output>
      TunnelReport: MessageTypeDefinition<_weft_v1_TunnelReport, _weft_v1_TunnelReport__Output>
      WatchServicesRequest: MessageTypeDefinition<_weft_v1_WatchServicesRequest, _weft_v1_WatchServicesRequest__Output>
      WatchTopologyRequest: MessageTypeDefinition<_weft_v1_WatchTopologyRequest, _weft_v1_WatchTopologyRequest__Output>
    }
  }
}

