// One mapping from the controller's typed errors to gRPC statuses. Clients
// act on the code (retry on UNAVAILABLE, fix the request on
// INVALID_ARGUMENT); the message says what exactly is wrong. Unexpected
// errors are logged in full and reach the client as INTERNAL without details
// that could leak internals.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import {
  ClusterConfigError, LeaseContentionError, LeaseLostError, LeaseRequestError, PoolExhaustedError, UnknownNetworkError,
} from '../ipam';
import { PkiError } from '../pki';
import {
  CorruptRecordError, EndpointConflictError, EndpointMismatchError, HostConflictError, RecordNotFoundError, RegistryContentionError,
} from '../registry/errors';
import { ServicePortConflictError } from '../registry/services';
import { DatacenterExistsError, DatacenterInUseError, GatewayRuleError } from '../registry/datacenters';
import { StoreUnavailableError } from '../store/types';
import { InvalidArgumentError, WeftError } from '../common/errors';
import { WEFT_CODE_TRAILER } from '../api/proto';

export class PermissionError extends WeftError {
  constructor(message: string) {
    super('WEFT_PERMISSION_DENIED', message);
    this.name = 'PermissionError';
  }
}

export class UnauthenticatedError extends WeftError {
  constructor(message: string) {
    super('WEFT_UNAUTHENTICATED', message);
    this.name = 'UnauthenticatedError';
  }
}

/** The caller has as many watch streams of a kind open as it may; one must close first. */
export class WatchLimitError extends WeftError {
  constructor(message: string) {
    super('WEFT_WATCH_LIMIT', message);
    this.name = 'WatchLimitError';
  }
}

/** Join under the name of a registered host, without proof of being it (ALREADY_EXISTS). */
export class HostNameTakenError extends WeftError {
  constructor(message: string) {
    super('WEFT_HOST_NAME_TAKEN', message);
    this.name = 'HostNameTakenError';
  }
}

/** Too many Join attempts from one address (RESOURCE_EXHAUSTED); the message says when to retry. */
export class JoinRateLimitedError extends WeftError {
  constructor(message: string) {
    super('WEFT_JOIN_RATE_LIMITED', message);
    this.name = 'JoinRateLimitedError';
  }
}

const CODES: Array<[new (...a: never[]) => Error, grpc.status]> = [
  [InvalidArgumentError, grpc.status.INVALID_ARGUMENT],
  [LeaseRequestError, grpc.status.INVALID_ARGUMENT],
  [UnknownNetworkError, grpc.status.INVALID_ARGUMENT],
  [PermissionError, grpc.status.PERMISSION_DENIED],
  [UnauthenticatedError, grpc.status.UNAUTHENTICATED],
  [EndpointConflictError, grpc.status.ALREADY_EXISTS],
  [ServicePortConflictError, grpc.status.ALREADY_EXISTS],
  [HostConflictError, grpc.status.ALREADY_EXISTS],
  [DatacenterExistsError, grpc.status.ALREADY_EXISTS],
  [GatewayRuleError, grpc.status.FAILED_PRECONDITION],
  [DatacenterInUseError, grpc.status.FAILED_PRECONDITION],
  [HostNameTakenError, grpc.status.ALREADY_EXISTS],
  [JoinRateLimitedError, grpc.status.RESOURCE_EXHAUSTED],
  [WatchLimitError, grpc.status.RESOURCE_EXHAUSTED],
  [EndpointMismatchError, grpc.status.FAILED_PRECONDITION],
  [RecordNotFoundError, grpc.status.NOT_FOUND],
  [PoolExhaustedError, grpc.status.RESOURCE_EXHAUSTED],
  [LeaseLostError, grpc.status.ABORTED],
  [LeaseContentionError, grpc.status.UNAVAILABLE],
  [RegistryContentionError, grpc.status.UNAVAILABLE],
  [StoreUnavailableError, grpc.status.UNAVAILABLE],
  // The stored cluster config or a record is broken: the operator must fix the store, the client cannot.
  [ClusterConfigError, grpc.status.FAILED_PRECONDITION],
  [CorruptRecordError, grpc.status.FAILED_PRECONDITION],
];

/**
 * The error's stable code rides along as trailing metadata (WEFT_CODE_TRAILER),
 * so a client that must act on one particular refusal (a rotating gateway told
 * it is the last active one) matches the code, never the message.
 */
function weftCodeMetadata(err: unknown): grpc.Metadata | undefined {
  if (!(err instanceof WeftError)) return undefined;
  const md = new grpc.Metadata();
  md.set(WEFT_CODE_TRAILER, err.code);
  return md;
}

export function toServiceError(err: unknown, ctx: { logger: Logger; method: string; caller: string }): Partial<grpc.StatusObject> {
  for (const [cls, code] of CODES) {
    if (err instanceof cls) {
      if (code === grpc.status.UNAVAILABLE || code === grpc.status.FAILED_PRECONDITION) {
        ctx.logger.warn({ method: ctx.method, caller: ctx.caller, err }, 'request failed');
      }
      return { code, details: (err as Error).message, metadata: weftCodeMetadata(err) };
    }
  }
  // A bad public key in Join is the client's mistake; other PKI failures are ours.
  if (err instanceof PkiError && (ctx.method === 'Join' || ctx.method === 'RenewCertificate')) {
    return { code: grpc.status.INVALID_ARGUMENT, details: `public_key_pem: ${err.message}` };
  }
  ctx.logger.error({ method: ctx.method, caller: ctx.caller, err }, 'internal error');
  return { code: grpc.status.INTERNAL, details: `internal error in ${ctx.method}; see the controller log` };
}
