// The errors of the WireGuard device layer. None of them ever carries a key:
// messages name the device, the operation and the field, and a value only
// when it cannot be a secret (a port, a line number, an errno).
import { WeftError, errnoName, type ErrnoName } from '../netlink/errors';

/** A reply that does not follow the protocol (a hostile, garbled or cut UAPI answer, a netlink attribute of the wrong size). */
export class WireGuardProtocolError extends WeftError {
  constructor(readonly device: string, readonly op: string, detail: string) {
    super('WEFT_WIREGUARD_PROTOCOL', `wireguard ${device}: ${op}: ${detail}`);
    this.name = 'WireGuardProtocolError';
  }
}

/**
 * The device refused or failed an operation: the UAPI's `errno=N` reply, a
 * socket that cannot be reached (ENOENT, ECONNREFUSED), an exchange that
 * timed out (ETIMEDOUT). `code` is the errno name.
 */
export class WireGuardUapiError extends WeftError {
  readonly errno: number;
  constructor(readonly device: string, readonly op: string, errno: number | ErrnoName, detail: string, options?: { cause?: unknown }) {
    const code = typeof errno === 'number' ? errnoName(errno) : errno;
    super(code, `wireguard ${device}: ${op}: ${code}: ${detail}`, options);
    this.name = 'WireGuardUapiError';
    this.errno = typeof errno === 'number' ? errno : 0;
  }
}

/** wireguard-go cannot be started, adopted or stopped; no backend is available. */
export class WireGuardDeviceError extends WeftError {
  constructor(readonly device: string, message: string, options?: { cause?: unknown }) {
    super('WEFT_WIREGUARD_DEVICE', `wireguard ${device}: ${message}`, options);
    this.name = 'WireGuardDeviceError';
  }
}
