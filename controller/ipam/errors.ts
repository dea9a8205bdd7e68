// Typed IPAM errors, so callers (the gRPC layer, the leader loop) can map each
// to a status without parsing messages.
import { WeftError } from '../common/errors';

/** The cluster config is malformed; `field` is the dotted path, e.g. "networks[1].cidr". */
export class ClusterConfigError extends WeftError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('WEFT_CLUSTER_CONFIG_INVALID', `${field}: ${message}`);
    this.name = 'ClusterConfigError';
    this.field = field;
  }
}

/** A config change would leave live leases outside their network or pool. */
export class OrphanedLeasesError extends WeftError {
  readonly leases: Array<{ network: string; subnet: string; host: string; reason: string }>;
  constructor(leases: OrphanedLeasesError['leases']) {
    const shown = leases.slice(0, 5).map((l) => `${l.network}/${l.subnet} (host "${l.host}": ${l.reason})`);
    const more = leases.length > 5 ? ` and ${leases.length - 5} more` : '';
    super(
      'WEFT_LEASES_ORPHANED',
      `refusing to save cluster config: it would orphan ${leases.length} live lease(s): ${shown.join('; ')}${more}. ` +
        'Release those leases (or let them expire and be reclaimed) first, or keep their networks and CIDRs.',
    );
    this.name = 'OrphanedLeasesError';
    this.leases = leases;
  }
}

/** A request argument is invalid (bad host name, unknown datacenter, ...). */
export class LeaseRequestError extends WeftError {
  constructor(message: string) {
    super('WEFT_LEASE_REQUEST_INVALID', message);
    this.name = 'LeaseRequestError';
  }
}

export class UnknownNetworkError extends WeftError {
  readonly network: string;
  constructor(network: string, known: string[]) {
    super('WEFT_NETWORK_UNKNOWN', `unknown network "${network}" (configured: ${known.map((n) => `"${n}"`).join(', ') || 'none'})`);
    this.name = 'UnknownNetworkError';
    this.network = network;
  }
}

/** No free subnet is left in the pool the request draws from. */
export class PoolExhaustedError extends WeftError {
  readonly network: string;
  readonly pool: string;
  readonly datacenter?: string;
  readonly inUse: number;
  constructor(opts: { network: string; pool: string; datacenter?: string; hostPrefixLength: number; inUse: number }) {
    const dc = opts.datacenter ? ` datacenter "${opts.datacenter}"` : '';
    super('WEFT_LEASE_POOL_EXHAUSTED', `network "${opts.network}"${dc} pool ${opts.pool} has no free /${opts.hostPrefixLength} subnet (${opts.inUse} in use)`);
    this.name = 'PoolExhaustedError';
    this.network = opts.network;
    this.pool = opts.pool;
    this.datacenter = opts.datacenter;
    this.inUse = opts.inUse;
  }
}

/**
 * The lease is gone or belongs to another host (reclaimed after its grace
 * period, or released). Not fatal: the host acquires again.
 */
export class LeaseLostError extends WeftError {
  constructor(network: string, subnet: string, host: string, detail: string) {
    super('WEFT_LEASE_LOST', `lease ${subnet} in network "${network}" is no longer held by host "${host}" (${detail}); acquire a new lease`);
    this.name = 'LeaseLostError';
  }
}

/** Too many compare-and-swap conflicts in a row; the store is under heavy contention. */
export class LeaseContentionError extends WeftError {
  constructor(message: string) {
    super('WEFT_LEASE_CONTENTION', message);
    this.name = 'LeaseContentionError';
  }
}
