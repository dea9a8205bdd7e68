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
