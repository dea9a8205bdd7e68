import { constants } from 'node:os';

const names = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno)) {
  if (!names.has(num)) names.set(num, name);
}

/** Symbolic name of an errno value: 17 -> 'EEXIST'. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `E${errno}`;
}

/**
 * A failed kernel call. `code` is the errno name so callers can match on it
 * (`err.code === 'EEXIST'`); `op` says what was attempted
 * (`link add weft.vxlan`); `detail` carries the kernel's extended ack text.
 */
export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly op: string;
  readonly detail?: string;

  constructor(errno: number, op: string, detail?: string) {
    const code = errnoName(errno);
    super(`${code}: ${op}${detail ? ` (${detail})` : ''}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
    this.op = op;
    this.detail = detail;
  }
}

/** True when `err` is a NetlinkError with one of the given errno names. */
export function isErrno(err: unknown, ...codes: string[]): err is NetlinkError {
  return err instanceof NetlinkError && codes.includes(err.code);
}

/** Bad input caught before anything reaches the kernel. */
export class InvalidArgumentError extends Error {
  readonly code = 'EINVAL';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidArgumentError';
  }
}

/** An integer between min and max, or an InvalidArgumentError naming the field: `invalid MTU 67 (must be between 68 and 65535)`. */
export function checkIntRange(field: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`invalid ${field} ${String(v)} (must be between ${min} and ${max})`);
  }
}
