// What each CNI verb does on this host: a veth pair per (container,
// interface), the host end a port of the network's bridge, the container end
// holding an address of the host's subnet and a route via the bridge's
// gateway.
//
// Every kernel and store call here is synchronous (koffi netlink,
// better-sqlite3), so one verb runs to completion before the next starts:
// two requests for the same container never interleave, without locks.
//
// The host end's name is derived from (containerId, ifname), so DEL and GC
// find it without any state of their own, also after an agent crash.
//
// Labels of an endpoint, later keys winning:
//   CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME / K8S_POD_UID -> k8s.pod.namespace / .name / .uid
//   CNI_ARGS weft.label.<key>=<value>                        -> <key>
//   runtimeConfig.labels {<key>: <value>}                    -> <key>  (capability "labels" in the conflist)
import { HOST_VETH_NAME, hostVethName } from './host/naming';
import { existsSync } from 'node:fs';
import { checkContainerId, checkIfname, checkLabels, checkName } from '../../controller/api/validate';
import { type Logger, silentLogger } from '../../controller/common/log';
import { addrAddRequest, addrList, IFA_F_NODAD } from '../../dataplane/netlink/addr';
import { isErrno, NetlinkError, NotNetnsError } from '../../dataplane/netlink/errors';
import { openHandle, throwIfAny, type Handle } from '../../dataplane/netlink/handle';
import { parseCidr } from '../../dataplane/netlink/ip';
import { AF_INET, AF_INET6 } from '../../dataplane/netlink/libc';
import {
  linkAdd, linkByName, linkDel, linkSetMasterRequest, linkSetUpRequest, validateLinkName, veth, MTU_MAX, MTU_MIN,
  linkFind, linkList, type Link } from '../../dataplane/netlink/link';
import { netnsId, netnsPath, pinNetns, sameNetns, type NetnsId, type NetnsPin } from '../../dataplane/netlink/netns';
import { routeAddRequest, routeList } from '../../dataplane/netlink/route';
import { chainResult } from '../cni/chain';
import { CniError, CNI_ERR, type CniRequest, type CniResult, type CniRoute } from '../cni/types';
import type { Allocation, IpamStore } from './ipam-store';
import type { CniHandlers } from '../cni/types';
import type { EndpointRecord, EndpointSink, NetworkAttachment } from './state/types';

export type CniHandlerDeps = {
  /** The host's attachment to a weft network; undefined while it has none (unknown network, no subnet yet). */
  attachment(network: string): NetworkAttachment | undefined;
  /**
   * Why there is no attachment, when attachment() has none: a network deleted
   * from the cluster (refused with NETWORK_DELETED), one with no subnet here
   * yet (TRY_AGAIN_LATER), or none of that name (INVALID_CONFIG). Without
   * it every such network is unknown.
   */
  absence?(network: string): { kind: 'deleted' | 'unknown' | 'pending'; message: string };
  ipam: IpamStore;
  endpoints: EndpointSink;
  logger?: Logger;
  /** Namespace holding the bridges and host ends (name or path); default: the agent's own. */
  hostNetns?: string;
};

export type OrphanReport = { released: Allocation[]; deletedLinks: string[] };

export type WeftCniHandlers = CniHandlers & {
  /**
   * At start and periodically: free allocations whose container is gone (its host end gone,
   * or its netns gone and the host end peerless) and delete weft host ends no allocation accounts for.
   */
  gcOrphans(): Promise<OrphanReport>;
};

// ---- request validation: everything is checked before the kernel is touched ----
//
// ADD and CHECK apply the controller's own rules (controller/api/validate.ts)
// to what ends up in the endpoint record: a container the controller would
// refuse must not be networked here, or it runs unregistered while the
// outbox retries a record that can never be accepted.

type AddConf = {
  network: string;
  att: NetworkAttachment;
  containerId: string;
  ifname: string;
  netns: string;
  hostName: string;
  mtu: number;
  family: number;
  prefixLen: number;
  labels: Record<string, string>;
  /** The address the runtime asked for (runtimeConfig.ips, else CNI_ARGS IP=), canonical; undefined: any free one. */
  requested?: string;
};

function requireIds(req: CniRequest): { containerId: string; ifname: string } {
  if (!req.containerId) throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_CONTAINERID is required');
  if (!req.ifname) throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_IFNAME is required');
  try {
    validateLinkName(req.ifname, 'CNI_IFNAME');
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_ENV, (e as Error).message);
  }
  return { containerId: req.containerId, ifname: req.ifname };
}

/** The controller's rules for what the endpoint record carries; CNI's own checks (requireIds) come first. */
function requireRegistrable(req: CniRequest, containerId: string, ifname: string, labels: Record<string, string>): void {
  const problem =
    checkContainerId(containerId, 'CNI_CONTAINERID') ??
    checkIfname(ifname, 'CNI_IFNAME') ??
    checkLabels(labels, 'labels (from CNI_ARGS K8S_POD_* and weft.label.*, and runtimeConfig.labels)');
  if (problem) throw new CniError(CNI_ERR.INVALID_ENV, `${problem}; the weft controller would refuse this endpoint`);
  const network = checkName(req.config.network, 'network');
  if (network) throw new CniError(CNI_ERR.INVALID_CONFIG, network);
}

function requireNetns(req: CniRequest): string {
  if (!req.netns) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS is required for ${req.command}`);
  let path: string;
  try {
    path = netnsPath(req.netns);
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_ENV, `invalid CNI_NETNS "${req.netns}": ${(e as Error).message}`);
  }
  // whether it exists, and is a namespace, is found out once, when it is pinned (pinContainerNetns)
  return path;
}

// init_net's inode number (PROC_NET_INIT_INO): the host's namespace, also when /proc/1 cannot be read
const INIT_NET_INO = 0xeffffff9n;

type NamedNetns = { what: string; id: NetnsId };

// The agent's own namespace and PID 1's stay the same for the life of the
// process, so each is looked up (three opens and an ioctl) once, not on every
// ADD and CHECK. A failed lookup is not remembered: the next request tries again.
let ownNetns: NamedNetns | undefined;
let initNetns: NamedNetns | undefined;

/** Namespaces that are never a container's: the agent's own, the one holding the bridges, and init's. */
function hostNamespaces(hostNetns: string | undefined): NamedNetns[] {
  ownNetns ??= { what: "the agent's own network namespace", id: netnsId('/proc/self/ns/net') };
  const out = [ownNetns];
  // looked up each time: a named namespace can be deleted and made again under the same path
  if (hostNetns) out.push({ what: `the host network namespace ${hostNetns}`, id: netnsId(hostNetns) });
  try {
    initNetns ??= { what: "the host's network namespace (that of PID 1)", id: netnsId('/proc/1/ns/net') };
    out.push(initNetns);
  } catch {
    // not readable from here (another PID namespace, a hardened /proc): the inode check below still holds
  }
  return out;
}

/**
 * Open the container's namespace once, checked: a network namespace (not a
 * FIFO, file, directory or device; opened without blocking), and not the
 * host's. Everything after works through the pin's path, so a path swapped
 * after the check cannot redirect it. Nothing has been created yet.
 */
function pinContainerNetns(netns: string, hostNetns: string | undefined): NetnsPin {
  let pin: NetnsPin;
  try {
    pin = pinNetns(netns);
  } catch (e) {
    // the spec's "container unknown or does not exist": the runtime needs no DEL for it
    if (isErrno(e, 'ENOENT', 'ENOTDIR')) throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `container network namespace ${netns} does not exist`);
    if (e instanceof NotNetnsError) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS ${netns} is not usable: ${e.detail ?? e.message}`);
    throw new CniError(CNI_ERR.INVALID_ENV, `cannot open CNI_NETNS ${netns}: ${(e as Error).message}`, undefined, { cause: e });
  }
  try {
    const host = pin.id.ino === INIT_NET_INO ? { what: "the host's initial network namespace" } : hostNamespaces(hostNetns).find((h) => sameNetns(h.id, pin.id));
    if (host) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_NETNS ${netns} is ${host.what}, not a container's: refused`);
    return pin;
  } catch (e) {
    pin.close();
    throw e;
  }
}

function requireAttachment(deps: CniHandlerDeps, network: string): NetworkAttachment {
  if (!network) throw new CniError(CNI_ERR.INVALID_CONFIG, 'network is required (the weft network to join)');
  const att = deps.attachment(network);
  if (att) return att;
  const why = deps.absence?.(network);
  if (!why) throw new CniError(CNI_ERR.INVALID_CONFIG, `unknown weft network "${network}" (not configured, or this host has no subnet in it yet)`);
  const code = { deleted: CNI_ERR.NETWORK_DELETED, unknown: CNI_ERR.INVALID_CONFIG, pending: CNI_ERR.TRY_AGAIN_LATER }[why.kind];
  throw new CniError(code, why.message);
}

export function labelsOf(req: CniRequest): Record<string, string> {
  const labels: Record<string, string> = {};
  const k8s: Record<string, string> = { K8S_POD_NAMESPACE: 'k8s.pod.namespace', K8S_POD_NAME: 'k8s.pod.name', K8S_POD_UID: 'k8s.pod.uid' };
  for (const [k, v] of Object.entries(req.args ?? {})) {
    if (k8s[k] && v) labels[k8s[k]] = v;
  }
  for (const [k, v] of Object.entries(req.args ?? {})) {
    if (k.startsWith('weft.label.') && k.length > 'weft.label.'.length) labels[k.slice('weft.label.'.length)] = v;
  }
  const rc = req.config.runtimeConfig?.labels;
  if (rc && typeof rc === 'object' && !Array.isArray(rc)) {
    for (const [k, v] of Object.entries(rc as Record<string, unknown>)) {
      if (typeof v === 'string') labels[k] = v;
    }
  }
  return labels;
}

function loadAddConf(deps: CniHandlerDeps, req: CniRequest): AddConf {
  const { containerId, ifname } = requireIds(req);
  const labels = labelsOf(req);
  requireRegistrable(req, containerId, ifname, labels);
  const att = requireAttachment(deps, req.config.network);
  const mtu = req.config.mtu ?? att.mtu;
  if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `invalid mtu ${String(mtu)} (must be between ${MTU_MIN} and ${MTU_MAX})`);
  }
  let subnet;
  try {
    subnet = parseCidr(att.subnet);
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_CONFIG, `network "${att.network}" has an invalid subnet: ${(e as Error).message}`);
  }
  const netns = requireNetns(req);
  const requested = requestedAddress(req, subnet.family);
  return {
    network: att.network, att, containerId, ifname, netns, mtu,
    hostName: hostVethName(att.network, containerId, ifname),
    family: subnet.family,
    prefixLen: subnet.prefixLen,
    labels,
    ...(requested !== undefined ? { requested } : {}),
  };
}

/**
 * The address the runtime asks for, of the network's family. Runtimes say it
 * two ways: runtimeConfig.ips (the "ips" capability: podman with several
 * --ip, Kubernetes' conventions; bare addresses or CIDRs) and CNI_ARGS IP=
 * (podman with one --ip, nerdctl --ip; a comma-separated list with some).
 * runtimeConfig wins when both are given. weft attaches one interface with
 * one address per network, so asking for more than one of its family is
 * refused, as is a value that is not an address.
 */
function requestedAddress(req: CniRequest, family: number): string | undefined {
  const rc = req.config.runtimeConfig?.ips;
  let asked: unknown[];
  let source: string;
  if (rc !== undefined && rc !== null) {
    if (!Array.isArray(rc)) throw new CniError(CNI_ERR.INVALID_CONFIG, `runtimeConfig.ips must be a list of addresses, not ${JSON.stringify(rc)}`);
    asked = rc;
    source = 'runtimeConfig.ips';
  } else {
    const arg = req.args?.IP;
    if (!arg) return undefined;
    asked = arg.split(',').filter((s) => s !== '');
    source = 'CNI_ARGS IP';
  }
  if (asked.length === 0) return undefined;
  const ips = asked.map((v) => {
    if (typeof v !== 'string') throw new CniError(CNI_ERR.INVALID_CONFIG, `${source}: ${JSON.stringify(v)} is not an address`);
    try {
      // a CIDR's prefix says nothing weft uses: the host's subnet decides the prefix
      const c = parseCidr(v);
      return { ip: c.ip, family: c.family };
    } catch {
      throw new CniError(CNI_ERR.INVALID_CONFIG, `${source}: ${JSON.stringify(v)} is not an address`);
    }
  });
  const mine = ips.filter((i) => i.family === family);
  if (mine.length === 0) {
    const fam = family === AF_INET6 ? 'IPv6' : 'IPv4';
    throw new CniError(CNI_ERR.ADDRESS_UNAVAILABLE, `${source} asks for ${asked.join(', ')}, but network "${req.config.network}" is ${fam}`);
  }
  if (mine.length > 1) {
    throw new CniError(CNI_ERR.ADDRESS_UNAVAILABLE, `${source} asks for ${mine.map((i) => i.ip).join(', ')}: weft gives one address per interface and network`);
  }
  return mine[0].ip;
}

// ---- small kernel helpers ----

/** Delete a link that may already be gone; true when it was there. */
function delLinkIfPresent(h: Handle, name: string): boolean {
  try {
    linkDel(h, name);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENODEV')) return false;
    throw e;
  }
}

function defaultDst(family: number): string {
  return family === AF_INET6 ? '::/0' : '0.0.0.0/0';
}

/**
 * A known condition as a CniError that says what was being done:
 *  - a CniError keeps its code;
 *  - the kernel refused (NetlinkError) or a system call failed: the container
 *    is unknown (3) when its namespace `netns` is gone by now, else I/O failure (5);
 *  - the agent DB was held by another writer past the busy timeout: try again
 *    later (11); it could not be read or written: I/O failure (5).
 * Anything else is a fault of the agent and is returned as it was thrown: the
 * server answers it as CNI_ERR.INTERNAL and logs its stack.
 */
function known(e: unknown, context: string, netns?: string): unknown {
  if (e instanceof CniError) return new CniError(e.cniCode, `${context}: ${e.message}`, e.details, { cause: e.cause });
  const what = e instanceof Error ? e.message : String(e);
  const sys = e as { code?: unknown; syscall?: unknown; name?: unknown } | null;
  if (e instanceof NetlinkError || (typeof sys?.code === 'string' && typeof sys.syscall === 'string')) {
    if (netns && !existsSync(netns)) {
      return new CniError(CNI_ERR.UNKNOWN_CONTAINER, `${context}: container network namespace ${netns} is gone (${what})`, undefined, { cause: e });
    }
    return new CniError(CNI_ERR.IO_FAILURE, `${context}: ${what}`, undefined, { cause: e });
  }
  if (sys?.name === 'SqliteError' && typeof sys.code === 'string') {
    if (/^SQLITE_(BUSY|LOCKED)/.test(sys.code)) {
      return new CniError(CNI_ERR.TRY_AGAIN_LATER, `${context}: the agent's address database is busy (${what})`, sys.code, { cause: e });
    }
    if (/^SQLITE_(IOERR|FULL|CANTOPEN|READONLY)/.test(sys.code)) {
      return new CniError(CNI_ERR.IO_FAILURE, `${context}: the agent's address database failed (${what})`, sys.code, { cause: e });
    }
  }
  return e;
}

/** What a request asks for, for messages about a failure no verb described more closely. */
function describe(req: CniRequest): string {
  const network = `network "${req.config.network}"`;
  return req.containerId ? `${req.command} ${req.ifname} of container ${req.containerId} in ${network}` : `${req.command} of ${network}`;
}

// ---- what a set-up attachment looks like, for idempotent ADD and CHECK ----

type Observed = { problems: string[]; hostLink?: Link; ctrLink?: Link; routeDst?: string };

function inspect(host: Handle, ctr: Handle, c: { att: NetworkAttachment; hostName: string; ifname: string; mtu: number; family: number; prefixLen: number }, ip: string): Observed {
  const problems: string[] = [];
  const out: Observed = { problems };
  const bridge = linkFind(host, c.att.bridge);
  const hostLink = linkFind(host, c.hostName);
  if (!hostLink) problems.push(`host end ${c.hostName} does not exist`);
  else {
    out.hostLink = hostLink;
    if (hostLink.kind !== 'veth') problems.push(`host end ${c.hostName} is a ${hostLink.kind ?? 'plain device'}, not a veth`);
    if (!bridge || hostLink.masterIndex !== bridge.index) problems.push(`host end ${c.hostName} is not a port of bridge ${c.att.bridge}`);
    if (!hostLink.up) problems.push(`host end ${c.hostName} is down`);
  }
  const ctrLink = linkFind(ctr, c.ifname);
  if (!ctrLink) {
    problems.push(`interface ${c.ifname} does not exist in the container`);
    return out;
  }
  out.ctrLink = ctrLink;
  if (!ctrLink.up) problems.push(`interface ${c.ifname} is down`);
  if (ctrLink.mtu !== c.mtu) problems.push(`interface ${c.ifname} has mtu ${ctrLink.mtu}, want ${c.mtu}`);
  const cidr = `${ip}/${c.prefixLen}`;
  if (!addrList(ctr, { linkIndex: ctrLink.index, family: c.family }).some((a) => a.cidr === cidr)) {
    problems.push(`interface ${c.ifname} does not have address ${cidr}`);
  }
  const routes = routeList(ctr, { family: c.family, linkIndex: ctrLink.index }).filter((r) => r.gw === c.att.gateway);
  const route = routes.find((r) => r.dst === defaultDst(c.family)) ?? routes.find((r) => r.dst === c.att.networkCidr);
  if (!route) problems.push(`no route via gateway ${c.att.gateway} on ${c.ifname} (to ${defaultDst(c.family)} or ${c.att.networkCidr})`);
  else out.routeDst = route.dst;
  return out;
}

/** weft's result, after what earlier plugins of the chain reported (prevResult) when weft is not first. */
function buildResult(req: CniRequest, c: AddConf, ip: string, hostLink: Link, ctrLink: Link, routeDst: string): CniResult {
  return chainResult(req.config.prevResult, ownResult(req, c, ip, hostLink, ctrLink, routeDst));
}

function ownResult(req: CniRequest, c: AddConf, ip: string, hostLink: Link, ctrLink: Link, routeDst: string): CniResult {
  const routes: CniRoute[] = [{ dst: routeDst, gw: c.att.gateway }];
  return {
    cniVersion: req.config.cniVersion,
    interfaces: [
      { name: hostLink.name, mac: hostLink.mac, mtu: hostLink.mtu },
      { name: ctrLink.name, mac: ctrLink.mac, mtu: ctrLink.mtu, sandbox: req.netns },
    ],
    ips: [{ address: `${ip}/${c.prefixLen}`, gateway: c.att.gateway, interface: 1 }],
    routes,
  };
}

// ---- the handlers ----

export function createCniHandlers(deps: CniHandlerDeps): WeftCniHandlers {
  const log = deps.logger ?? silentLogger;
  const openHost = () => openHandle(deps.hostNetns ? { netns: deps.hostNetns } : {});

  // Reports go out after the verb has answered: a slow or failing sink must not slow or fail ADD/DEL.
  function report(kind: 'registered' | 'released', ep: EndpointRecord): void {
    setImmediate(() => {
      try {
        deps.endpoints[kind](ep);
      } catch (e) {
        log.warn({ err: e, endpoint: ep }, `endpoint sink failed on ${kind}`);
      }
    });
  }

  function openContainer(path: string): Handle {
    try {
      return openHandle({ netns: path });
    } catch (e) {
      // gone between the existence check and here, or a path that is not a namespace
      throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `cannot enter container network namespace ${path}: ${(e as Error).message}`);
    }
  }

  /** Create the pair and configure both ends (the container's namespace by its pinned path); the caller undoes on failure by deleting the host end. */
  function plumb(host: Handle, ctr: Handle, c: AddConf, ctrPath: string, ip: string, bridgeIndex: number): { hostLink: Link; ctrLink: Link; routeDst: string } {
    let hostLink: Link;
    try {
      hostLink = linkAdd(host, veth({ name: c.hostName, mtu: c.mtu, peer: { name: c.ifname, netns: ctrPath } }));
    } catch (e) {
      // the kernel says EEXIST for either end; the host end was checked just before, so it is the container's
      if (isErrno(e, 'EEXIST')) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_IFNAME ${c.ifname} already exists in the container`);
      throw e;
    }
    throwIfAny(host.batch([linkSetMasterRequest(hostLink.index, bridgeIndex), linkSetUpRequest(hostLink.index)]));
    const ctrLink = linkByName(ctr, c.ifname);
    // a second weft network in the same container must not take over its default route
    const hasDefault = routeList(ctr, { family: c.family, dst: defaultDst(c.family) }).length > 0;
    const routeDst = hasDefault ? c.att.networkCidr : defaultDst(c.family);
    throwIfAny(
      ctr.batch([
        linkSetUpRequest('lo'),
        // v4 gets a broadcast as `ip addr add ... brd +` would; v6 skips DAD, the address is ours alone
        addrAddRequest(c.family === AF_INET ? { linkIndex: ctrLink.index, cidr: `${ip}/${c.prefixLen}`, broadcast: '+' } : { linkIndex: ctrLink.index, cidr: `${ip}/${c.prefixLen}`, flags: IFA_F_NODAD }),
        linkSetUpRequest(ctrLink.index),
        routeAddRequest({ dst: routeDst, gw: c.att.gateway, linkIndex: ctrLink.index }),
      ]),
    );
    // the result needs name, MAC and MTU, which neither end changes after creation: no re-read
    return { hostLink, ctrLink, routeDst };
  }

  function cmdAdd(req: CniRequest): CniResult {
    const c = loadAddConf(deps, req);
    const pin = pinContainerNetns(c.netns, deps.hostNetns);
    try {
      return addPinned(c, pin.path, req);
    } finally {
      pin.close();
    }
  }

  function addPinned(c: AddConf, ctrPath: string, req: CniRequest): CniResult {
    const context = `ADD ${c.ifname} of container ${c.containerId} to network "${c.network}"`;
    const host = openHost();
    try {
      const bridge = linkFind(host, c.att.bridge);
      if (!bridge || bridge.kind !== 'bridge') {
        throw new CniError(CNI_ERR.TRY_AGAIN_LATER, `${context}: bridge ${c.att.bridge} ${bridge ? 'is not a bridge' : 'does not exist'} yet`);
      }
      const { allocation, fresh, replaced } = deps.ipam.allocate(c.network, c.att.subnet, c.att.gateway, c.containerId, c.ifname, {
        netns: c.netns, ...(c.requested !== undefined ? { requested: c.requested } : {}),
      });
      if (replaced) log.warn({ stale: replaced, now: allocation.ip }, `${context}: address ${replaced.ip} is outside the host's subnet ${c.att.subnet}, replaced`);
      const ip = allocation.ip;
      let created = false;
      try {
        const ctr = openContainer(ctrPath);
        try {
          if (linkFind(host, c.hostName)) {
            // an earlier ADD of this very attachment: done already (a retry), or left half-made by a crash
            const seen = inspect(host, ctr, c, ip);
            if (seen.problems.length === 0) {
              // report again: a crash after the first ADD's pair but before its report would otherwise lose the endpoint
              report('registered', { network: c.network, ip, containerId: c.containerId, ifname: c.ifname, labels: c.labels });
              return buildResult(req, c, ip, seen.hostLink!, seen.ctrLink!, seen.routeDst!);
            }
            log.info({ problems: seen.problems }, `${context}: redoing a half-made attachment`);
            delLinkIfPresent(host, c.hostName);
          }
          created = true;
          const made = plumb(host, ctr, c, ctrPath, ip, bridge.index);
          report('registered', { network: c.network, ip, containerId: c.containerId, ifname: c.ifname, labels: c.labels });
          return buildResult(req, c, ip, made.hostLink, made.ctrLink, made.routeDst);
        } finally {
          ctr.close();
        }
      } catch (e) {
        // undo in reverse: the pair (the container end goes with it), then the address if this ADD took it
        if (created) {
          try {
            delLinkIfPresent(host, c.hostName);
          } catch (u) {
            log.error({ err: u }, `${context}: cleanup could not delete ${c.hostName}`);
          }
        }
        if (fresh) deps.ipam.release(c.network, c.containerId, c.ifname);
        throw known(e, context, c.netns);
      }
    } finally {
      host.close();
    }
  }

  function cmdDel(req: CniRequest): void {
    const { containerId, ifname } = requireIds(req);
    // no attachment, netns or prevResult needed: DEL must clean up after anything, even a failed or absent ADD
    const network = req.config.network;
    const hostName = hostVethName(network, containerId, ifname);
    const context = `DEL ${ifname} of container ${containerId} from network "${network}"`;
    const host = openHost();
    try {
      delLinkIfPresent(host, hostName);
    } catch (e) {
      throw known(e, `${context}: deleting ${hostName}`);
    } finally {
      host.close();
    }
    const freed = deps.ipam.release(network, containerId, ifname);
    if (freed) report('released', { network, ip: freed.ip, containerId, ifname, labels: {} });
  }

  function cmdCheck(req: CniRequest): void {
    const c = loadAddConf(deps, req);
    const context = `CHECK ${c.ifname} of container ${c.containerId} in network "${c.network}"`;
    const allocation = deps.ipam.get(c.network, c.containerId, c.ifname);
    if (!allocation) throw new CniError(CNI_ERR.CHECK_MISMATCH, `${context}: no address is allocated to it`);
    const cidr = `${allocation.ip}/${c.prefixLen}`;
    const prev = req.config.prevResult;
    if (prev && !(prev.ips ?? []).some((i) => i.address === cidr)) {
      throw new CniError(CNI_ERR.CHECK_MISMATCH, `${context}: prevResult does not list address ${cidr}`);
    }
    const pin = pinContainerNetns(c.netns, deps.hostNetns);
    try {
      checkPinned(c, pin.path, allocation.ip, context);
    } finally {
      // also when the host's handle cannot be opened: the pin is an open fd
      pin.close();
    }
  }

  function checkPinned(c: AddConf, ctrPath: string, ip: string, context: string): void {
    const host = openHost();
    try {
      const ctr = openContainer(ctrPath);
      try {
        const seen = inspect(host, ctr, c, ip);
        if (seen.problems.length > 0) throw new CniError(CNI_ERR.CHECK_MISMATCH, `${context}: ${seen.problems.join('; ')}`);
      } finally {
        ctr.close();
      }
    } catch (e) {
      throw e instanceof CniError ? e : known(e, context, c.netns);
    } finally {
      host.close();
    }
  }

  function cmdStatus(req: CniRequest): void {
    const network = req.config.network;
    const att = deps.attachment(network);
    if (!att) throw new CniError(CNI_ERR.NOT_AVAILABLE, `network "${network}" is not ready on this host: no subnet leased yet (or no such network)`);
    const host = openHost();
    try {
      const bridge = linkFind(host, att.bridge);
      if (!bridge) throw new CniError(CNI_ERR.NOT_AVAILABLE, `network "${network}" is not ready on this host: bridge ${att.bridge} does not exist`);
      if (bridge.kind !== 'bridge') throw new CniError(CNI_ERR.NOT_AVAILABLE, `network "${network}" is not ready on this host: ${att.bridge} is not a bridge`);
      if (!bridge.up) throw new CniError(CNI_ERR.NOT_AVAILABLE, `network "${network}" is not ready on this host: bridge ${att.bridge} is down`);
    } finally {
      host.close();
    }
  }

  function cmdGc(req: CniRequest): void {
    const network = req.config.network;
    const valid = req.config.validAttachments;
    if (!valid) {
      // without the runtime's list every attachment would look invalid: doing nothing is the only safe answer
      log.warn({ network }, 'GC without validAttachments: nothing released');
      return;
    }
    const keep = valid.map((v) => ({ containerId: v.containerID, ifname: v.ifname }));
    const keepSet = new Set(keep.map((k) => `${k.containerId}\0${k.ifname}`));
    const failed: Array<{ containerId: string; ifname: string }> = [];
    const host = openHost();
    try {
      for (const a of deps.ipam.list(network)) {
        if (keepSet.has(`${a.containerId}\0${a.ifname}`)) continue;
        try {
          delLinkIfPresent(host, hostVethName(network, a.containerId, a.ifname));
        } catch (e) {
          // keep the address while its interface may still be in use
          failed.push({ containerId: a.containerId, ifname: a.ifname });
          log.warn({ err: e, allocation: a }, 'GC could not delete the host end; address kept');
        }
      }
    } finally {
      host.close();
    }
    for (const a of deps.ipam.releaseAllExcept(network, [...keep, ...failed])) {
      report('released', { network, ip: a.ip, containerId: a.containerId, ifname: a.ifname, labels: {} });
    }
    if (failed.length > 0) {
      throw new CniError(CNI_ERR.IO_FAILURE, `GC of network "${network}": could not delete ${failed.length} host end(s); their addresses are kept for the next GC`);
    }
  }

  function gcOrphans(): OrphanReport {
    const out: OrphanReport = { released: [], deletedLinks: [] };
    const host = openHost();
    try {
      // one listing, not a request per allocation: this runs periodically on the event loop
      const links = new Map(linkList(host).map((l) => [l.name, l]));
      // host ends an allocation keeps, or that this run already deleted
      const accounted = new Set<string>();
      for (const a of deps.ipam.list()) {
        const name = hostVethName(a.network, a.containerId, a.ifname);
        const link = links.get(name);
        if (link) {
          // a namespace still mounted means a container the runtime still owns: its DEL or GC decides
          if (a.netns && existsSync(a.netns)) {
            accounted.add(name);
            continue;
          }
          if (link.kind === 'veth' && link.parentIndex !== undefined) {
            accounted.add(name); // kept alive by a process in the namespace
            continue;
          }
          if (link.kind === 'veth') {
            delLinkIfPresent(host, name);
            out.deletedLinks.push(name);
            accounted.add(name);
          }
        }
        // No host end: a veth pair dies whole, so the container's end is gone too, even
        // when the path still opens (a /proc/<pid>/ns/net whose pid is now another process).
        const freed = deps.ipam.release(a.network, a.containerId, a.ifname);
        if (freed) {
          out.released.push(freed);
          report('released', { network: a.network, ip: a.ip, containerId: a.containerId, ifname: a.ifname, labels: {} });
        }
      }
      // Host ends no allocation accounts for: an ADD that died after plumbing but whose
      // allocation was released since, or a pair left by hand. Verbs never interleave with
      // this (both run without yielding), so no ADD is half-way through here.
      for (const l of links.values()) {
        if (l.kind !== 'veth' || !HOST_VETH_NAME.test(l.name) || accounted.has(l.name)) continue;
        delLinkIfPresent(host, l.name);
        out.deletedLinks.push(l.name);
      }
    } finally {
      host.close();
    }
    if (out.released.length > 0 || out.deletedLinks.length > 0) {
      log.info({ released: out.released.map((a) => `${a.network}/${a.ip} ${a.containerId}`), deletedLinks: out.deletedLinks }, 'released what containers that are gone left behind');
    }
    return out;
  }

  // async only at the boundary: the work itself never yields, so verbs never interleave.
  // A known condition no verb described more closely (the DB busy in ADD's allocation, a
  // failed netlink socket in STATUS) leaves here as a CniError; anything else as it was thrown.
  const verb = <T>(run: (req: CniRequest) => T) => async (req: CniRequest): Promise<T> => {
    try {
      return run(req);
    } catch (e) {
      throw e instanceof CniError ? e : known(e, describe(req));
    }
  };
  return {
    add: verb(cmdAdd),
    del: verb(cmdDel),
    check: verb(cmdCheck),
    status: verb(cmdStatus),
    gc: verb(cmdGc),
    gcOrphans: async () => gcOrphans(),
  };
}
