// What an upstream failure means for the client (502 or 504), for the
// balancer (the lease's Outcome) and for a retry (a connection that never
// opened carried no byte of the request, so another backend may get it).
import type { Outcome } from '../model';

/** Backends tried after the first when the connection to one never opened; requests and tunnels alike. */
export const MAX_RETRIES = 2;

export type UpstreamFailure = {
  status: 502 | 504;
  outcome: Outcome;
  /** A few words for the client's body and the log. */
  why: string;
  /** The connection was never established: nothing of the request reached the backend. */
  beforeConnect: boolean;
};

const REFUSED: UpstreamFailure = { status: 502, outcome: 'connect-error', why: 'connection refused', beforeConnect: true };
const UNREACHABLE: UpstreamFailure = { status: 502, outcome: 'connect-error', why: 'unreachable', beforeConnect: true };
const CONNECT_TIMEOUT: UpstreamFailure = { status: 504, outcome: 'connect-error', why: 'connect timeout', beforeConnect: true };
const HEADERS_TIMEOUT: UpstreamFailure = { status: 504, outcome: 'timeout', why: 'no response in time', beforeConnect: false };
const BODY_TIMEOUT: UpstreamFailure = { status: 504, outcome: 'timeout', why: 'response body stalled', beforeConnect: false };
const RESET: UpstreamFailure = { status: 502, outcome: 'reset', why: 'connection reset', beforeConnect: false };
const BAD_RESPONSE: UpstreamFailure = { status: 502, outcome: 'reset', why: 'invalid response', beforeConnect: false };

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return REFUSED;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return UNREACHABLE;
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return CONNECT_TIMEOUT;
    case 'UND_ERR_HEADERS_TIMEOUT':
      return HEADERS_TIMEOUT;
    case 'UND_ERR_BODY_TIMEOUT':
      return BODY_TIMEOUT;
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
    case 'HPE_HEADER_OVERFLOW':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return BAD_RESPONSE;
    default:
      return RESET;
  }
}
