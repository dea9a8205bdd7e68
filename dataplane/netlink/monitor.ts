// Watching the kernel's link and address changes as they happen: a netlink
// socket subscribed to rtnetlink multicast groups, read without ever blocking
// Node's thread. The wait is a poll() run on a libuv worker thread through
// koffi's async call, on the socket and an eventfd that close() writes to, so
// an idle monitor costs no CPU at all (no timeout, no wake-ups) and stopping
// it never waits for the kernel. When poll says there is something to read,
// the main thread drains the socket with non-blocking receives.
//
// The kernel drops notifications when the socket's receive buffer is full
// and says so with ENOBUFS on the next receive: from then on the listener's
// picture is incomplete, so the monitor reports an overrun and the listener
// must relist everything. A message of a subscribed type that does not parse
// is treated the same way (reported, and an overrun), never silently dropped.
import { decodeIfAddrMsg, IFADDRMSG_LEN, IFINFOMSG_LEN, NLA_HDRLEN, NETLINK_ROUTE, align4, parseMessages, RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, type Message } from './codec';
import { addrDecode, type Addr } from './addr';
import { NetlinkError } from './errors';
import { linkDecode, type Link } from './link';
import {
  errno, sys, AF_BRIDGE, AF_NETLINK, EAGAIN, EFD_CLOEXEC, EFD_NONBLOCK, ENOBUFS, MSG_DONTWAIT, MSG_TRUNC, POLLIN, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW,
  SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE,
} from './libc';
import { withNetns } from './netns';

// include/uapi/linux/rtnetlink.h: enum rtnetlink_groups (all below 32, so they fit nl_groups)
const RTNLGRP_LINK = 1;
const RTNLGRP_IPV4_IFADDR = 5;
const RTNLGRP_IPV6_IFADDR = 9;

export type MonitorGroup = 'link' | 'ipv4-addr' | 'ipv6-addr';

const GROUP_BITS: Record<MonitorGroup, number> = {
  link: 1 << (RTNLGRP_LINK - 1),
  'ipv4-addr': 1 << (RTNLGRP_IPV4_IFADDR - 1),
  'ipv6-addr': 1 << (RTNLGRP_IPV6_IFADDR - 1),
};

export type MonitorEvent =
  /**
   * bridgePort: an AF_BRIDGE notification, about the device's place in a
   * bridge rather than the device: its 'del' means the device left the
   * bridge (the kernel sends one per port when a bridge is deleted), not
   * that the device is gone.
   */
  | { kind: 'link'; action: 'new' | 'del'; link: Link; bridgePort: boolean }
  | { kind: 'addr'; action: 'new' | 'del'; addr: Addr }
  /** Notifications were lost (receive buffer overrun, a message cut or unreadable): relist everything. */
  | { kind: 'overrun'; reason: string };

export type MonitorOptions = {
  groups: MonitorGroup[];
  /** Namespace name (under /run/netns) or path; default: the current one. */
  netns?: string;
  /** SO_RCVBUF in bytes; default 4 MiB. Smaller means overruns sooner. */
  receiveBuffer?: number;
  /** Every event read in one wake-up, in the kernel's order. Runs on the main thread. */
  onEvents(events: MonitorEvent[]): void;
  /** A receive or parse failure; the monitor keeps going (a parse failure also comes as an overrun). */
  onError?(err: Error): void;
};

export type MonitorStats = { wakeups: number; datagrams: number; events: number; overruns: number };

export type Monitor = {
  stats(): MonitorStats;
  /**
   * Read, now and on this thread, every notification already waiting, and
   * deliver it through onEvents before returning: a caller about to act on
   * what it has been told makes sure it has been told everything so far.
   */
  readPending(): void;
  /** Stop: wakes the waiting poll, closes the socket once it has returned. */
  close(): Promise<void>;
};

const EINTR = 4;
const EBADMSG = 74;
const DEFAULT_RECEIVE_BUFFER = 4 << 20;
const RX_BYTES = 64 << 10;
/** Datagrams read per wake-up before yielding to the rest of the event loop (poll wakes again at once if more wait). */
const DRAIN_LIMIT = 512;
/** After a failed poll, wait this long before the next, so a persistent failure cannot spin. */
const POLL_RETRY_MS = 200;

/** A message of a subscribed type that is not what the kernel sends. */
export class MonitorParseError extends NetlinkError {
  constructor(why: string) {
    super(EBADMSG, `link monitor: malformed notification from the kernel: ${why}`);
    this.name = 'MonitorParseError';
  }
}

/** The attributes after a fixed header must tile the body exactly: each at least a header long, none running past the end. */
function checkAttrs(body: Buffer, start: number, what: string): void {
  let off = start;
  while (off < body.length) {
    if (body.length - off < NLA_HDRLEN) throw new MonitorParseError(`${what}: ${body.length - off} stray bytes after the last attribute`);
    const len = body.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > body.length) throw new MonitorParseError(`${what}: attribute at offset ${off} claims ${len} bytes, ${body.length - off} there`);
    off += align4(len);
  }
}

function parseLink(m: Message): Link {
  const what = m.type === RTM_NEWLINK ? 'RTM_NEWLINK' : 'RTM_DELLINK';
  if (m.body.length < IFINFOMSG_LEN) throw new MonitorParseError(`${what} of ${m.body.length} bytes, less than struct ifinfomsg`);
  checkAttrs(m.body, IFINFOMSG_LEN, what);
  const link = linkDecode(m);
  if (link.index <= 0) throw new MonitorParseError(`${what} for interface index ${link.index}`);
  if (link.name === '') throw new MonitorParseError(`${what} for index ${link.index} without a name`);
  return link;
}

function parseAddr(m: Message): Addr {
  const what = m.type === RTM_NEWADDR ? 'RTM_NEWADDR' : 'RTM_DELADDR';
  if (m.body.length < IFADDRMSG_LEN) throw new MonitorParseError(`${what} of ${m.body.length} bytes, less than struct ifaddrmsg`);
  checkAttrs(m.body, IFADDRMSG_LEN, what);
  if (decodeIfAddrMsg(m.body).index <= 0) throw new MonitorParseError(`${what} without an interface index`);
  const addr = addrDecode(m.body);
  if (addr.cidr === '') throw new MonitorParseError(`${what} on index ${addr.linkIndex} without an address`);
  return addr;
}

/**
 * The events in one datagram from the kernel. Framing is checked as for any
 * reply (parseMessages); link and address messages strictly; other message
 * types (the groups carry no others today) are skipped.
 */
export function parseNotifications(buf: Buffer, length = buf.length): MonitorEvent[] {
  const out: MonitorEvent[] = [];
  for (const m of parseMessages(buf, length, 'link monitor')) {
    if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
      const link = parseLink(m);
      out.push({ kind: 'link', action: m.type === RTM_NEWLINK ? 'new' : 'del', link, bridgePort: m.body.readUInt8(0) === AF_BRIDGE });
    }
    else if (m.type === RTM_NEWADDR || m.type === RTM_DELADDR) out.push({ kind: 'addr', action: m.type === RTM_NEWADDR ? 'new' : 'del', addr: parseAddr(m) });
  }
  return out;
}

function openSocket(groups: number, receiveBuffer: number): number {
  const op = 'link monitor';
  const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) throw new NetlinkError(errno(), `${op}: socket`);
  const v = Buffer.alloc(4);
  v.writeInt32LE(receiveBuffer);
  // FORCE needs CAP_NET_ADMIN (the agent has it); the plain option is capped by net.core.rmem_max
  if (sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) !== 0) sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v, 4);
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  addr.writeUInt32LE(groups >>> 0, 8);
  if (sys.bind(fd, addr, addr.length) !== 0) {
    const e = errno();
    sys.close(fd);
    throw new NetlinkError(e, `${op}: bind to groups 0x${groups.toString(16)}`);
  }
  return fd;
}

/** Subscribe and start waiting; events arrive through onEvents until close(). */
export function openMonitor(o: MonitorOptions): Monitor {
  if (!Array.isArray(o.groups) || o.groups.length === 0) throw new NetlinkError(22 /* EINVAL */, 'link monitor: no groups to subscribe to');
  let bits = 0;
  for (const g of o.groups) {
    if (!(g in GROUP_BITS)) throw new NetlinkError(22, `link monitor: unknown group ${JSON.stringify(g)} (one of ${Object.keys(GROUP_BITS).join(', ')})`);
    bits |= GROUP_BITS[g];
  }
  const receiveBuffer = o.receiveBuffer ?? DEFAULT_RECEIVE_BUFFER;
  const fd = o.netns ? withNetns(o.netns, () => openSocket(bits, receiveBuffer)) : openSocket(bits, receiveBuffer);
  const stopFd = sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stopFd < 0) {
    const e = errno();
    sys.close(fd);
    throw new NetlinkError(e, 'link monitor: eventfd');
  }

  // struct pollfd[2] { int fd; short events; short revents; }: owned by the worker thread while a poll runs
  const pfds = Buffer.alloc(16);
  pfds.writeInt32LE(fd, 0);
  pfds.writeInt16LE(POLLIN, 4);
  pfds.writeInt32LE(stopFd, 8);
  pfds.writeInt16LE(POLLIN, 12);
  const rx = Buffer.alloc(RX_BYTES);
  const from = Buffer.alloc(12);
  const stats: MonitorStats = { wakeups: 0, datagrams: 0, events: 0, overruns: 0 };
  const report = (err: Error) => o.onError?.(err);

  let polling = false;
  let closing = false;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));

  function release(): void {
    if (closed) return;
    closed = true;
    sys.close(fd);
    sys.close(stopFd);
    finished();
  }

  function drain(): void {
    const events: MonitorEvent[] = [];
    const overrun = (reason: string) => {
      stats.overruns++;
      // one relist covers any number of losses in a row
      if (events.at(-1)?.kind !== 'overrun') events.push({ kind: 'overrun', reason });
    };
    for (let i = 0; i < DRAIN_LIMIT; i++) {
      from.fill(0);
      const n = Number(sys.recvfrom(fd, rx, rx.length, MSG_DONTWAIT | MSG_TRUNC, from, [from.length]));
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        if (e === ENOBUFS) {
          overrun('the receive buffer overflowed (ENOBUFS): the kernel dropped notifications');
          continue;
        }
        report(new NetlinkError(e, 'link monitor: recv'));
        overrun(`receive failed (errno ${e})`);
        break;
      }
      stats.datagrams++;
      // only the kernel's notifications (sender port 0); another process could write to our port
      if (from.readUInt32LE(4) !== 0) continue;
      if (n > rx.length) {
        overrun(`a notification of ${n} bytes was cut to ${rx.length}`);
        continue;
      }
      try {
        events.push(...parseNotifications(rx, n));
      } catch (err) {
        report(err as Error);
        overrun((err as Error).message);
      }
    }
    stats.events += events.filter((e) => e.kind !== 'overrun').length;
    if (events.length > 0) {
      try {
        o.onEvents(events);
      } catch (err) {
        report(err as Error);
      }
    }
  }

  function arm(): void {
    if (closing) return release();
    polling = true;
    pfds.writeInt16LE(0, 6);
    pfds.writeInt16LE(0, 14);
    sys.poll.async(pfds, 2, -1, (err: unknown, r: number) => {
      polling = false;
      if (closing) return release();
      stats.wakeups++;
      if (err || r < 0) {
        report(err instanceof Error ? err : new NetlinkError(EINTR, 'link monitor: poll failed'));
        retryTimer = setTimeout(arm, POLL_RETRY_MS);
        return;
      }
      if (pfds.readInt16LE(6) !== 0) drain();
      arm();
    });
  }
  arm();

  return {
    stats: () => ({ ...stats }),
    readPending() {
      // the worker thread only waits in poll(); the socket is read on this thread alone
      if (!closing) drain();
    },
    close() {
      if (!closing) {
        closing = true;
        clearTimeout(retryTimer);
        if (polling) {
          const one = Buffer.alloc(8);
          one.writeBigUInt64LE(1n);
          // the eventfd counter cannot overflow from one write; poll wakes, its callback releases the fds
          sys.write(stopFd, one, 8);
        } else release();
      }
      return done;
    },
  };
}
