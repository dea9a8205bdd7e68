// One base for every error weft throws on purpose. Each carries a stable
// `code` that callers, metrics and log queries match on instead of parsing
// messages (messages may be reworded; a code never changes meaning and is
// never reused), and the error it wraps as `cause`. pino's `err` serializer
// logs type, message, stack, code and cause of any of them.
//
// This file imports nothing of weft, so every folder may use it; it is the
// only file of controller/ that dataplane/ (a leaf library) imports.
//
// Codes come in three forms:
//   WEFT_*        a weft condition, listed in CODES below with what it means;
//   WEFT_CNI_*    a CNI request refused: WEFT_CNI_<NAME> where NAME is the key of
//                 CNI_ERR in cni-plugin/cni/types.ts and the error's `cniCode`
//                 the number the runtime sees (WEFT_CNI_INTERNAL: 999, a fault
//                 inside the agent, logged there with its stack);
//   E*            the kernel refused a call: the errno name, as Node's own system
//                 errors have it (EEXIST, ENODEV, EOPNOTSUPP; see errno(3)).
//                 NetlinkError, EthtoolError, SysctlError, SysctlNotFoundError.

/** Every WEFT_* code: what it means, and who throws it. */
export const CODES = {
  // configuration and command line (exit 2)
  WEFT_CONFIG_INVALID: 'a flag, WEFT_* variable or config file value is invalid; the message names the source (ConfigError)',
  WEFT_USAGE: 'a weft subcommand was called wrongly: missing argument, unknown subcommand, value out of range (UsageError)',
  WEFT_STORE_URL_INVALID: 'a store URL is not sqlite:PATH or etcd:http://host:port[,...] (StoreUrlError)',
  WEFT_INVALID_ARGUMENT: 'a value given to an API or library call is invalid; `field` names it when known (InvalidArgumentError; gRPC INVALID_ARGUMENT)',
  WEFT_CIDR_INVALID: 'a CIDR or address is malformed or has host bits set (CidrError)',
  // PKI and identity
  WEFT_PKI: 'the cluster CA or a certificate cannot be made, read or trusted; the message names the file (PkiError)',
  WEFT_TOKEN_INVALID: 'a bootstrap token, or the options to create one, are invalid (TokenError)',
  WEFT_HOST_NAME_TAKEN: 'Join under the name of a registered host without proof of being that host; delete the host first (HostNameTakenError; gRPC ALREADY_EXISTS)',
  WEFT_JOIN_RATE_LIMITED: 'too many Join attempts from one address; the message says when to retry (JoinRateLimitedError; gRPC RESOURCE_EXHAUSTED)',
  WEFT_IDENTITY: "the agent's identity (state dir credentials, CA pin, join) cannot be established (IdentityError)",
  WEFT_SERVER_CERT: "the controller's certificate does not fit --server or the trusted CA; `problem` says how (ServerCertError)",
  WEFT_PERMISSION_DENIED: 'the caller may not do this (PermissionError; gRPC PERMISSION_DENIED)',
  WEFT_UNAUTHENTICATED: 'the caller presented no usable identity (UnauthenticatedError; gRPC UNAUTHENTICATED)',
  WEFT_WATCH_LIMIT: 'the caller already has as many watch streams of that kind open as it may (WatchLimitError; gRPC RESOURCE_EXHAUSTED)',
  // IPAM
  WEFT_CLUSTER_CONFIG_INVALID: 'the cluster config is malformed; `field` is the path (ClusterConfigError)',
  WEFT_LEASES_ORPHANED: 'a cluster config change would leave live leases outside their network (OrphanedLeasesError)',
  WEFT_LEASE_REQUEST_INVALID: 'a lease request argument is invalid (LeaseRequestError; gRPC INVALID_ARGUMENT)',
  WEFT_NETWORK_UNKNOWN: 'no network of that name is configured (UnknownNetworkError; gRPC INVALID_ARGUMENT)',
  WEFT_LEASE_POOL_EXHAUSTED: 'no free host subnet is left in the pool (PoolExhaustedError; gRPC RESOURCE_EXHAUSTED)',
  WEFT_LEASE_LOST: 'the lease expired and was reclaimed, or was released; acquire again (LeaseLostError; gRPC ABORTED)',
  WEFT_LEASE_CONTENTION: 'too many compare-and-swap conflicts on leases; retry (LeaseContentionError; gRPC UNAVAILABLE)',
  // registry
  WEFT_ENDPOINT_CONFLICT: 'the address is held by another container (EndpointConflictError; gRPC ALREADY_EXISTS)',
  WEFT_ENDPOINT_MISMATCH: 'the endpoint exists, but not as described (EndpointMismatchError; gRPC FAILED_PRECONDITION)',
  WEFT_RECORD_NOT_FOUND: 'the record a change needs is not there (RecordNotFoundError; gRPC NOT_FOUND)',
  WEFT_RECORD_CORRUPT: 'a stored record cannot be decoded (CorruptRecordError; gRPC FAILED_PRECONDITION)',
  WEFT_HOST_CONFLICT: "a host's VTEP MAC, underlay address or WireGuard key is already another host's; `field` names it (HostConflictError; gRPC ALREADY_EXISTS)",
  WEFT_REGISTRY_CONTENTION: 'too many compare-and-swap conflicts in the registry; retry (RegistryContentionError; gRPC UNAVAILABLE)',
  WEFT_DATACENTER_EXISTS: 'a datacenter of that name already exists (DatacenterExistsError; gRPC ALREADY_EXISTS)',
  WEFT_DATACENTER_GATEWAY: "a gateway change breaks a datacenter's rules: host not registered there, no WireGuard key, too few gateways, endpoint taken (GatewayRuleError; gRPC FAILED_PRECONDITION)",
  WEFT_GATEWAY_LAST_ACTIVE: "draining would leave a datacenter without an active gateway; a rotating gateway rotates undrained (LastActiveGatewayError; gRPC FAILED_PRECONDITION, trailer weft-code)",
  WEFT_DATACENTER_IN_USE: 'a datacenter still has hosts and the delete was not forced (DatacenterInUseError; gRPC FAILED_PRECONDITION)',
  // store
  WEFT_STORE_UNAVAILABLE: 'the store (SQLite file or etcd) cannot be reached or written; retry (StoreUnavailableError; gRPC UNAVAILABLE)',
  WEFT_STORE_COMPACTED: 'a watch asked for a revision the store no longer keeps; list again (CompactedError)',
  WEFT_STORE_LEASE_NOT_FOUND: 'a store lease expired or was revoked (LeaseNotFoundError)',
  // dataplane and agent
  WEFT_IPTABLES_RESTORE_FAILED: 'iptables-restore refused a rule set; `line` and `table` say where (IptablesRestoreError)',
  WEFT_IPTABLES_EXEC_FAILED: 'iptables-save or iptables-restore could not run (IptablesExecError)',
  WEFT_START_ABORTED: 'a signal stopped the agent before it was running (StartAborted)',
  WEFT_SERVICE_PORT_CONFLICT: 'a tcp/udp port number or an http route already belongs to another service; `other` names it (ServicePortConflictError; gRPC ALREADY_EXISTS)',
  WEFT_WIREGUARD_PROTOCOL: "a WireGuard device's reply (UAPI socket or generic netlink) does not parse; the message says where, never a key (WireGuardProtocolError)",
  WEFT_WIREGUARD_DEVICE: 'a WireGuard device cannot be started, adopted or stopped: wireguard-go exited, its socket answers from another namespace, no backend (WireGuardDeviceError)',
  WEFT_INGRESS_HANDOFF: 'handing the listening sockets from a running ingress to a new one failed; the old one keeps serving (HandoffError)',
} as const satisfies Record<`WEFT_${string}`, string>;

/** A documented code: one of CODES, a CNI refusal, or an errno name. */
export type WeftCode = keyof typeof CODES | `WEFT_CNI_${string}` | `E${string}`;

export class WeftError extends Error {
  readonly code: WeftCode;
  constructor(code: WeftCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeftError';
    this.code = code;
  }
}

/**
 * Bad input caught before it is used: a request field, a library argument.
 * `field` is where it came from when known (the proto path, e.g. "endpoint.ip").
 */
export class InvalidArgumentError extends WeftError {
  readonly field?: string;
  constructor(message: string, options?: { field?: string; cause?: unknown }) {
    super('WEFT_INVALID_ARGUMENT', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InvalidArgumentError';
    if (options?.field !== undefined) this.field = options.field;
  }
}
