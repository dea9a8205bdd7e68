// Typed registry errors, so the API layer maps each to a gRPC status
// without parsing messages.
import { WeftError } from '../common/errors';

/** The address is held by another container (ALREADY_EXISTS). */
export class EndpointConflictError extends WeftError {
  constructor(network: string, ip: string, holder: { containerId: string; host: string }) {
    super('WEFT_ENDPOINT_CONFLICT', `address ${ip} in network "${network}" is already held by container "${holder.containerId}" on host "${holder.host}"`);
    this.name = 'EndpointConflictError';
  }
}

/** The endpoint exists but not as the caller described it (FAILED_PRECONDITION). */
export class EndpointMismatchError extends WeftError {
  constructor(message: string) {
    super('WEFT_ENDPOINT_MISMATCH', message);
    this.name = 'EndpointMismatchError';
  }
}

/** The record a change needs is not there (NOT_FOUND). */
export class RecordNotFoundError extends WeftError {
  constructor(message: string) {
    super('WEFT_RECORD_NOT_FOUND', message);
    this.name = 'RecordNotFoundError';
  }
}

/** A stored record cannot be decoded: somebody wrote the key by hand or an old format lingers. */
export class CorruptRecordError extends WeftError {
  constructor(key: string, detail: string) {
    super('WEFT_RECORD_CORRUPT', `record ${key} is unreadable: ${detail}`);
    this.name = 'CorruptRecordError';
  }
}

/** Compare-and-swap kept failing under concurrent writers (UNAVAILABLE, retry). */
export class RegistryContentionError extends WeftError {
  constructor(message: string) {
    super('WEFT_REGISTRY_CONTENTION', message);
    this.name = 'RegistryContentionError';
  }
}

/**
 * A value that identifies a host on the overlay (VTEP MAC, underlay address,
 * WireGuard key) is already another registered host's (ALREADY_EXISTS). Two
 * hosts with one MAC or address make every agent drop one of them, so the
 * second claimant is refused. `field` is the request field; the message does
 * not name the holder.
 */
export class HostConflictError extends WeftError {
  readonly field: string;
  /** The holder's name, for the controller's log only: the caller is told no more than that another host has it. */
  readonly holder: string;
  constructor(field: string, value: string, holder: string) {
    super(
      'WEFT_HOST_CONFLICT',
      `${field}: ${value} is already held by another registered host; every host needs its own ` +
        '(a host frees its values when it leaves, changes them, or has been silent past its lease TTL and reclaim grace)',
    );
    this.name = 'HostConflictError';
    this.field = field;
    this.holder = holder;
  }
}
