// Device offload settings through the ethtool ioctl (SIOCETHTOOL), the same
// call the `ethtool` tool makes. Used to turn off TX checksum offload on VXLAN
// devices: on some kernel/NIC combinations the outer UDP checksum of a VXLAN
// packet is computed wrongly when offloaded (the flannel/Calico
// `tx-checksum-ip-generic` problem) and the receiver drops every packet.
//
// The legacy ETHTOOL_GTXCSUM/STXCSUM pair is used rather than the
// GFEATURES/SFEATURES bitmaps: the kernel maps it onto the whole checksum
// feature group (ip-generic, ipv4, ipv6), which is exactly what must go, and
// it needs no string-set lookup to find a feature's bit.
import koffi from 'koffi';
import { errnoName, InvalidArgumentError, WeftError } from './netlink/errors';
import { errno, sys, AF_INET, SOCK_CLOEXEC, SOCK_DGRAM } from './netlink/libc';
import { withNetns } from './netlink/netns';

const SIOCETHTOOL = 0x8946;
const ETHTOOL_GTXCSUM = 0x16;
const ETHTOOL_STXCSUM = 0x17;

// struct ifreq on 64-bit Linux: char ifr_name[16]; then a union whose
// ifr_data member is a pointer; 40 bytes in all.
const IFNAMSIZ = 16;
const IFREQ_LEN = 40;

export type EthtoolOptions = { netns?: string };

/** The kernel refused an ethtool request (EOPNOTSUPP: the driver has no such setting; ENODEV: no such device). */
export class EthtoolError extends WeftError {
  readonly errno: number;
  readonly op: string;
  constructor(e: number, op: string) {
    const code = errnoName(e);
    super(code, `${code}: ${op}`);
    this.name = 'EthtoolError';
    this.errno = e;
    this.op = op;
  }
}

function checkName(dev: string): void {
  if (typeof dev !== 'string' || dev.length === 0 || Buffer.byteLength(dev) >= IFNAMSIZ || /[/:\s]/.test(dev)) {
    throw new InvalidArgumentError(`invalid device name ${JSON.stringify(dev)} (1 to 15 bytes, without "/", ":" or whitespace)`);
  }
}

/**
 * One ethtool_value request ({ u32 cmd; u32 data; }) on `dev`; returns data
 * as the kernel left it. The socket is opened inside the namespace, so the
 * ioctl acts on that namespace's device of that name.
 */
function ethtoolValue(dev: string, cmd: number, data: number, op: string, opts: EthtoolOptions): number {
  checkName(dev);
  const open = () => sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const fd = opts.netns ? withNetns(opts.netns, open) : open();
  if (fd < 0) throw new EthtoolError(errno(), `${op}: socket`);
  // the ifreq carries the address of the value, so the value lives in
  // memory koffi owns (a Buffer's address may move with the GC)
  const value = koffi.alloc('uint32', 2);
  try {
    koffi.encode(value, 'uint32', [cmd, data], 2);
    const ifr = Buffer.alloc(IFREQ_LEN);
    ifr.write(dev, 0, IFNAMSIZ - 1, 'utf8');
    ifr.writeBigUInt64LE(koffi.address(value), IFNAMSIZ);
    if (sys.ioctl(fd, SIOCETHTOOL, 'void *', ifr) !== 0) throw new EthtoolError(errno(), op);
    return (koffi.decode(value, 'uint32', 2) as number[])[1];
  } finally {
    koffi.free(value);
    sys.close(fd);
  }
}

/** Whether TX checksum offload (any of the checksum features) is on for the device. */
export function txChecksumGet(dev: string, opts: EthtoolOptions = {}): boolean {
  return ethtoolValue(dev, ETHTOOL_GTXCSUM, 0, `ethtool get tx-checksumming ${dev}${opts.netns ? ` in ${opts.netns}` : ''}`, opts) !== 0;
}

/** Turn TX checksum offload on or off (`ethtool -K dev tx on|off`); segmentation offloads that depend on it follow. */
export function txChecksumSet(dev: string, on: boolean, opts: EthtoolOptions = {}): void {
  ethtoolValue(dev, ETHTOOL_STXCSUM, on ? 1 : 0, `ethtool set tx-checksumming ${on ? 'on' : 'off'} ${dev}${opts.netns ? ` in ${opts.netns}` : ''}`, opts);
}

/**
 * Make sure TX checksum offload is off; true when it had to be changed.
 * Reads first, so a device already right sees no request that would make
 * the kernel recompute its features.
 */
export function ensureTxChecksumOff(dev: string, opts: EthtoolOptions = {}): boolean {
  if (!txChecksumGet(dev, opts)) return false;
  txChecksumSet(dev, false, opts);
  if (txChecksumGet(dev, opts)) throw new EthtoolError(95 /* EOPNOTSUPP */, `ethtool set tx-checksumming off ${dev}: the kernel kept it on`);
  return true;
}
