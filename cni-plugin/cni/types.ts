// The CNI contract between the runtime-facing shim and the agent's verb
// handlers, as plain data. The shim forwards stdin and the CNI_* environment;
// the agent parses them into a CniRequest, a handler returns a result or
// throws a CniError, and the agent renders that for the runtime (CNI 1.1.0,
// with 0.4.0 / 1.0.0 result shapes when the config asks for them).

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** weft's network configuration, as it stands in a conflist's plugin entry. */
export type WeftNetConf = {
  cniVersion: string;
  name: string;
  type: 'weft';
  /** The weft network (from the cluster config) this attachment joins; default "default". */
  network: string;
  /** Unix socket of the local agent. */
  agentSocket: string;
  /** Container-side MTU; default: the host's overlay MTU. */
  mtu?: number;
  /** The previous plugin's result when chained (CHECK, DEL, later plugins' ADD). */
  prevResult?: CniResult;
  runtimeConfig?: Record<string, unknown>;
  /** GC only: attachments the runtime still knows; everything else of this network may go. */
  validAttachments?: Array<{ containerID: string; ifname: string }>;
  /** Every other key, kept for chaining. */
  raw: Record<string, unknown>;
};

export type CniRequest = {
  command: CniCommand;
  containerId: string;
  /** Path of the container's network namespace; may be empty (DEL after the namespace is gone, GC, STATUS). */
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs. */
  args: Record<string, string>;
  path: string[];
  config: WeftNetConf;
};

export type CniInterface = { name: string; mac?: string; mtu?: number; sandbox?: string };
export type CniIpConfig = { address: string; gateway?: string; interface?: number };
export type CniRoute = { dst: string; gw?: string; mtu?: number; priority?: number };
export type CniDns = { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };

/** A result in 1.x shape; rendering converts it for older versions. */
export type CniResult = {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
};

/** Error codes from the CNI spec that weft uses. */
export const CNI_ERR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
  /** weft-specific (the spec leaves 100+ to plugins): the network has no free address on this host. */
  ADDRESSES_EXHAUSTED: 100,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details?: string;
  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}

/** What the agent's socket server calls for each verb; the agent implements it. */
export type CniHandlers = {
  add(req: CniRequest): Promise<CniResult>;
  del(req: CniRequest): Promise<void>;
  check(req: CniRequest): Promise<void>;
  status(req: CniRequest): Promise<void>;
  gc(req: CniRequest): Promise<void>;
};
