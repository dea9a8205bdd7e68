import { constants } from 'node:os';
// weft's one error base and its argument error; the only import from outside dataplane/.
import { InvalidArgumentError, WeftError } from '../../controller/common/errors';

export { InvalidArgumentError, WeftError };

export type ErrnoName = `E${string}`;

// Where two names share a number, the kernel's own wins over the C library's
// alias: 95 is EOPNOTSUPP, not ENOTSUP, so callers matching 'EOPNOTSUPP' see it.
const ALIASES = new Set(['ENOTSUP', 'EWOULDBLOCK', 'EDEADLOCK']);
const names = new Map<number, ErrnoName>();
for (const [name, num] of Object.entries(constants.errno)) {
  if (!names.has(num) || ALIASES.has(names.get(num)!)) names.set(num, name as ErrnoName);
}

/** Symbolic name of an errno value: 17 -> 'EEXIST'. */
export function errnoName(errno: number): ErrnoName {
  return names.get(errno) ?? `E${errno}`;
}

/**
 * A failed kernel call. `code` is the errno name so callers can match on it
 * (`err.code === 'EEXIST'`), as on Node's own system errors; `op` says what
 * was attempted (`link add weft.vxlan`); `detail` carries the kernel's
 * extended ack text.
 */
export class NetlinkError extends WeftError {
  readonly errno: number;
  readonly op: string;
  readonly detail?: string;

  constructor(errno: number, op: string, detail?: string) {
    const code = errnoName(errno);
    super(code, `${code}: ${op}${detail ? ` (${detail})` : ''}`);
    this.name = 'NetlinkError';
    this.errno = errno;
    this.op = op;
    this.detail = detail;
  }
}

/**
 * A path given as a network namespace is something else (a regular file, a
 * FIFO, a directory, a device, another type of namespace); found before the
 * path was opened for reading, so nothing blocked on it. Its code is EINVAL,
 * what setns(2) answers for such an fd.
 */
export class NotNetnsError extends NetlinkError {
  readonly path: string;
  constructor(path: string, op: string, detail: string) {
    super(22 /* EINVAL */, op, detail);
    this.name = 'NotNetnsError';
    this.path = path;
  }
}

/** True when `err` is a NetlinkError with one of the given errno names. */
export function isErrno(err: unknown, ...codes: string[]): err is NetlinkError {
  return err instanceof NetlinkError && codes.includes(err.code);
}

/** An integer between min and max, or an InvalidArgumentError naming the field: `invalid MTU 67 (must be between 68 and 65535)`. */
export function checkIntRange(field: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`invalid ${field} ${String(v)} (must be between ${min} and ${max})`);
  }
}
