// This host's WireGuard dataplane (README.md, "The path" and "Full mesh"):
// weft.wg0, the WireGuard device, with one peer per remote gateway on a
// gateway and one per neighbour in a mesh datacenter; on a gateway also
// weft.xdc, a VXLAN device nested in it, whose FDB sends each remote
// gateway's MAC to its tunnel address; and the routes: each peer's tunnel
// address /32 into weft.wg0, each remote subnet via the chosen remote
// gateway into weft.xdc.
//
// Reconciled like the overlay: what the kernel and the device hold is listed,
// compared with what the plan says, and only the difference is sent; a
// restart with nothing changed sends nothing and re-keys nothing. When the
// host needs WireGuard no more, all of it goes. The private key is read from
// the key file at every reconcile, so a rotated file is picked up.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../controller/common/log';
import { isErrno } from '../../../dataplane/netlink/errors';
import type { Handle, Request } from '../../../dataplane/netlink/handle';
import { canonicalIp, formatCidr, ipFamily, networkOf, parseCidr } from '../../../dataplane/netlink/ip';
import { AF_BRIDGE } from '../../../dataplane/netlink/libc';
import {
  linkAdd, linkByIndex, linkDel, linkFind, linkSetMtuRequest, linkSetUpRequest, linkSpecDiff, vxlan, type Link,
} from '../../../dataplane/netlink/link';
import {
  fdbDelRequest, fdbList, fdbReplaceRequest, neighDelRequest, neighList, neighSetRequest, NTF_SELF, NUD_PERMANENT, type Neigh,
} from '../../../dataplane/netlink/neigh';
import { addrList } from '../../../dataplane/netlink/addr';
import {
  routeDelRequest, routeList, routeReplaceRequest, RT_SCOPE_LINK, RT_TABLE_MAIN, RTPROT_WEFT, type Route,
} from '../../../dataplane/netlink/route';
import { WireGuardUapiError } from '../../../dataplane/wireguard/errors';
import { reconcileDevice, type ReconcileCounts } from '../../../dataplane/wireguard/reconcile';
import { openWireGuardDevice, type OpenDevice } from '../../../dataplane/wireguard/select';
import { raiseSocketBuffers } from '../../../dataplane/wireguard/socket-buffers';
import { WG_KEY_FILE, wireGuardPublicKey } from '../state/wireguard-keys';
import { deriveMtu, readPathMtus, type TunnelMtu } from './mtu';
import type { WireGuardDataplane } from './policy';
import { WG_DEVICE, XDC_DEVICE, XDC_PORT, XDC_VNI, type PeerReport } from '../state/tunnel';

export type GatewayReport = {
  mtu: TunnelMtu;
  wireguard: ReconcileCounts;
  /** Netlink writes (links, routes, neighbours, FDB) this reconcile sent. */
  requests: number;
  /** ms since the epoch of the key file the device was given. */
  keySince: number;
};

export type Gateway = {
  /** Make the devices, peers, routes and entries what `dp` says; undefined: remove them all (no longer a gateway). */
  reconcile(dp: WireGuardDataplane | undefined): Promise<GatewayReport | undefined>;
  /** The WireGuard peers as the device reports them, named by the last plan. */
  peers(): Promise<PeerReport[]>;
  /** Let go of the device; the tunnel stays up. */
  close(): void;
};

export type GatewayOptions = {
  h: Handle;
  netns?: string;
  stateDir: string;
  underlayIp: string;
  log: Logger;
  /** "userspace" forces wireguard-go even where the kernel has WireGuard. */
  backend?: 'auto' | 'userspace';
};

async function readPrivateKey(stateDir: string): Promise<{ key: string; since: number }> {
  const path = join(stateDir, WG_KEY_FILE);
  const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
  const key = text.trim();
  wireGuardPublicKey(key); // throws (naming no key) when the file holds no key
  return { key, since: Math.round(st.mtimeMs) };
}

function underlayMtu(h: Handle, underlayIp: string): number {
  const ip = canonicalIp(underlayIp);
  for (const a of addrList(h)) {
    if (canonicalIp(a.cidr.split('/')[0]) === ip) return linkByIndex(h, a.linkIndex).mtu;
  }
  return 1500;
}

const canonCidr = (c: string) => formatCidr(networkOf(parseCidr(c)));

export function createGateway(o: GatewayOptions): Gateway {
  const { h, log } = o;
  let device: OpenDevice | undefined;
  let lastPeers: WireGuardDataplane['peers'] = [];
  /** "pid:port" of the wireguard-go whose sockets were last raised: a new process or a new port means new sockets. */
  let buffersRaised = '';

  /** wireguard-go's UDP sockets to 7 MiB buffers (socket-buffers.ts); the kernel's WireGuard has no process to reach. */
  function raiseBuffers(d: OpenDevice, port: number): void {
    if (d.pid === undefined || buffersRaised === `${d.pid}:${port}`) return;
    buffersRaised = `${d.pid}:${port}`;
    try {
      const r = raiseSocketBuffers(d.pid);
      log.info({ pid: d.pid, sockets: r.sockets, rcvbuf: r.rcvbuf, sndbuf: r.sndbuf }, `${WG_DEVICE}: wireguard-go's UDP socket buffers raised`);
    } catch (err) {
      log.warn({ err, pid: d.pid }, `${WG_DEVICE}: cannot raise wireguard-go's UDP socket buffers; they stay at the kernel's default (bursts may drop)`);
    }
  }

  async function openDevice(): Promise<OpenDevice> {
    device ??= await openWireGuardDevice({ name: WG_DEVICE, netns: o.netns, backend: o.backend, log });
    return device;
  }

  /** weft.xdc gone (no longer a gateway); true when there was one. */
  function removeXdc(): boolean {
    const xdc = linkFind(h, XDC_DEVICE);
    if (!xdc) return false;
    linkDel(h, xdc.index);
    log.info(`not a gateway: ${XDC_DEVICE} removed`);
    return true;
  }

  async function teardown(): Promise<number> {
    let n = removeXdc() ? 1 : 0;
    // routes into weft.wg0 go with it
    if (device || linkFind(h, WG_DEVICE)) {
      const d = await openDevice();
      await d.destroy();
      device = undefined;
      n++;
    }
    if (n > 0) log.info(`WireGuard no longer needed: ${WG_DEVICE} removed`);
    lastPeers = [];
    return n;
  }

  function ensureXdc(dp: WireGuardDataplane, mtu: number): { link: Link; requests: number } {
    const spec = vxlan({ name: XDC_DEVICE, vni: XDC_VNI, port: XDC_PORT, local: dp.tunnelAddress, learning: false, mac: dp.mac });
    let link = linkFind(h, XDC_DEVICE);
    let requests = 0;
    const diff = link ? linkSpecDiff(spec, link) : [];
    if (link && diff.length > 0) {
      log.info({ device: XDC_DEVICE, differs: diff }, `${XDC_DEVICE} is not as it should be: made again`);
      linkDel(h, link.index);
      requests++;
      link = undefined;
    }
    if (!link) {
      link = linkAdd(h, { ...spec, mtu });
      requests++;
    }
    const reqs: Request[] = [];
    if (link.mtu !== mtu) reqs.push(linkSetMtuRequest(link.index, mtu));
    if (!link.up) reqs.push(linkSetUpRequest(link.index));
    if (reqs.length > 0) throwFirst(h.batch(reqs));
    return { link, requests: requests + reqs.length };
  }

  function ensureWgLink(mtu: number): { link: Link; requests: number } {
    const link = linkFind(h, WG_DEVICE);
    if (!link) throw new Error(`${WG_DEVICE} has no interface after the device was opened`);
    const reqs: Request[] = [];
    if (link.mtu !== mtu) reqs.push(linkSetMtuRequest(link.index, mtu));
    if (!link.up) reqs.push(linkSetUpRequest(link.index));
    if (reqs.length > 0) throwFirst(h.batch(reqs));
    return { link, requests: reqs.length };
  }

  /** Routes, neighbours and FDB entries of both devices: list, compare, send the difference (adds first, deletes last). */
  function reconcileEntries(dp: WireGuardDataplane, wg: Link, xdc: Link | undefined): number {
    const want = new Map<string, Route>();
    for (const dst of dp.wgRoutes) want.set(canonCidr(dst), { dst: canonCidr(dst), linkIndex: wg.index, scope: RT_SCOPE_LINK, protocol: RTPROT_WEFT, table: RT_TABLE_MAIN });
    for (const r of xdc ? dp.xdcRoutes : []) {
      if (want.has(r.dst)) continue; // a tunnel address is never routed into weft.xdc
      want.set(r.dst, { dst: r.dst, gw: r.gw, linkIndex: xdc!.index, onlink: true, protocol: RTPROT_WEFT, table: RT_TABLE_MAIN });
    }
    const weft = routeList(h, { protocol: RTPROT_WEFT });
    const have = new Map(weft.map((r) => [r.dst, r]));
    const adds: Request[] = [];
    const dels: Request[] = [];
    for (const [dst, r] of want) {
      const a = have.get(dst);
      // a weft route on another device (the overlay's, from before this host was a gateway) is taken over in place
      if (!a || a.linkIndex !== r.linkIndex || (a.gw ?? '') !== (r.gw ?? '')) adds.push(routeReplaceRequest(r));
    }
    for (const a of weft) {
      if ((a.linkIndex === wg.index || a.linkIndex === xdc?.index) && !want.has(a.dst)) dels.push(routeDelRequest(a));
    }
    const routeReqs = [...adds, ...dels];
    const entryReqs = xdc ? xdcEntries(dp, xdc) : { adds: [], dels: [] };
    const reqs = [...entryReqs.adds, ...routeReqs, ...entryReqs.dels];
    if (reqs.length === 0) return 0;
    const errs = h.batch(reqs);
    errs.forEach((e, i) => {
      if (!e) return;
      if (i >= entryReqs.adds.length + adds.length && isErrno(e, 'ENOENT', 'ESRCH')) return;
      log.warn({ err: e }, 'WireGuard route or entry refused');
    });
    log.info({ routes: adds.length, stale: dels.length + entryReqs.dels.length, entries: entryReqs.adds.length }, 'WireGuard routes and entries reconciled');
    return reqs.length;
  }

  /** weft.xdc's neighbours and FDB entries: adds (sent before the routes that use them) and deletes (after). */
  function xdcEntries(dp: WireGuardDataplane, xdc: Link): { adds: Request[]; dels: Request[] } {
    const neighs = new Map(dp.xdcPeers.map((p) => [p.ip, p]));
    const haveNeigh = neighList(h, { linkIndex: xdc.index }).filter((n) => n.family !== AF_BRIDGE && n.state & NUD_PERMANENT && n.ip);
    const haveFdb = fdbList(h, { linkIndex: xdc.index }).filter((f) => f.family === AF_BRIDGE && f.state & NUD_PERMANENT && f.masterIndex === undefined && f.mac && f.dst);
    const neighOf = (ip: string, mac: string): Neigh => ({ linkIndex: xdc.index, family: ipFamily(ip), ip, mac, state: NUD_PERMANENT, flags: 0 });
    const fdbOf = (mac: string, dst: string): Neigh => ({ linkIndex: xdc.index, family: AF_BRIDGE, mac, dst, state: NUD_PERMANENT, flags: NTF_SELF });
    const neighAdds: Request[] = [];
    for (const p of dp.xdcPeers) {
      const f = haveFdb.find((x) => x.mac!.toLowerCase() === p.mac);
      if (!f || canonicalIp(f.dst!) !== p.ip) neighAdds.push(fdbReplaceRequest(fdbOf(p.mac, p.ip)));
    }
    for (const p of dp.xdcPeers) {
      const n = haveNeigh.find((x) => canonicalIp(x.ip!) === p.ip);
      if (!n || n.mac?.toLowerCase() !== p.mac) neighAdds.push(neighSetRequest(neighOf(p.ip, p.mac)));
    }
    const macs = new Set(dp.xdcPeers.map((p) => p.mac));
    const entryDels: Request[] = [];
    for (const n of haveNeigh) if (!neighs.has(canonicalIp(n.ip!))) entryDels.push(neighDelRequest(n));
    for (const f of haveFdb) if (!macs.has(f.mac!.toLowerCase()) && f.mac !== '00:00:00:00:00:00') entryDels.push(fdbDelRequest(f));
    return { adds: neighAdds, dels: entryDels };
  }

  return {
    async reconcile(dp) {
      if (!dp) {
        await teardown();
        return undefined;
      }
      const { key, since } = await readPrivateKey(o.stateDir);
      const want = {
        privateKey: key,
        listenPort: dp.listenPort,
        peers: dp.peers.map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint, allowedIps: p.allowedIps, persistentKeepalive: p.persistentKeepalive })),
      };
      let wireguard: ReconcileCounts;
      try {
        wireguard = await reconcileDevice(await openDevice(), want, { log });
      } catch (err) {
        if (!deviceGone(err)) throw err;
        // wireguard-go died (its TUN went with it) under a running agent: start another and configure it whole
        log.warn({ err, device: WG_DEVICE }, 'the WireGuard device is gone: starting it again');
        device?.release();
        device = undefined;
        wireguard = await reconcileDevice(await openDevice(), want, { log });
      }
      lastPeers = dp.peers;
      raiseBuffers(await openDevice(), dp.listenPort);
      const mtu = deriveMtu(dp.mtu, underlayMtu(h, o.underlayIp), readPathMtus(h, dp.peers.map((p) => p.endpoint)));
      const wg = ensureWgLink(mtu.wg);
      const xdc = dp.xdc ? ensureXdc(dp, mtu.xdc) : { link: undefined, requests: removeXdc() ? 1 : 0 };
      const requests = wg.requests + xdc.requests + reconcileEntries(dp, wg.link, xdc.link);
      return { mtu, wireguard, requests, keySince: since };
    },
    async peers() {
      if (!device) return [];
      const st = await device.get();
      const now = Date.now();
      const byKey = new Map(lastPeers.map((p) => [p.publicKey, p]));
      return st.peers.flatMap((p) => {
        const spec = byKey.get(p.publicKey);
        if (!spec) return [];
        return [{
          host: spec.host, datacenter: spec.datacenter, endpoint: p.endpoint ?? spec.endpoint,
          handshakeAgeSeconds: p.lastHandshakeMs > 0 ? Math.max(0, (now - p.lastHandshakeMs) / 1000) : -1,
          rxBytes: Number(p.rxBytes), txBytes: Number(p.txBytes),
        }];
      });
    },
    close() {
      device?.release();
      device = undefined;
    },
  };
}

/** The device's process is gone: its socket refuses connections or was removed. */
function deviceGone(err: unknown): boolean {
  return err instanceof WireGuardUapiError && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT');
}

function throwFirst(errs: Array<Error | undefined | null>): void {
  const e = errs.find((x) => x);
  if (e) throw e;
}
