// The CNI contract between the runtime-facing shim and the agent's verb
// handlers, as plain data. The shim forwards stdin and the CNI_* environment;
// the agent parses them into a CniRequest, a handler returns a result or
// throws a CniError, and the agent renders that for the runtime (CNI 1.1.0,
// with 0.4.0 / 1.0.0 result shapes when the config asks for them).
import { WeftError } from '../../controller/common/errors';

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

/**
 * Error codes from the CNI spec that weft uses, and weft's own (the spec
 * leaves 100 and up to plugins). A handler throws a CniError for a condition
 * it knows; anything else reaches the runtime as INTERNAL with its message,
 * and the agent logs it with its stack.
 */
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
  /** weft: the network has no free address on this host. */
  ADDRESSES_EXHAUSTED: 100,
  /** weft: CHECK found the container's networking not as ADD left it. */
  CHECK_MISMATCH: 101,
  /** weft: the network the config names was deleted from the cluster (`weft network delete`). */
  NETWORK_DELETED: 102,
  /** weft: the address the runtime asked for (runtimeConfig.ips, CNI_ARGS IP=) cannot be given: outside the host's subnet, or taken. */
  ADDRESS_UNAVAILABLE: 103,
  /** weft: a fault inside the agent (a bug, not a refusal); the message says what, the agent's log has the stack. */
  INTERNAL: 999,
} as const;

const CNI_ERR_NAMES = new Map<number, string>(Object.entries(CNI_ERR).map(([name, n]) => [n, name]));

/**
 * A CNI request refused with `cniCode`, the number the runtime sees. Its weft
 * `code` is WEFT_CNI_<name in CNI_ERR>, e.g. WEFT_CNI_UNKNOWN_CONTAINER.
 */
export class CniError extends WeftError {
  readonly cniCode: number;
  readonly details?: string;
  constructor(cniCode: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(`WEFT_CNI_${CNI_ERR_NAMES.get(cniCode) ?? cniCode}`, msg, options);
    this.name = 'CniError';
    this.cniCode = cniCode;
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
