// The fail-closed table, `inet weft_xdc`: traffic for another datacenter's
// addresses leaves this host only through the tunnel path, the overlay's
// VXLAN never goes to another datacenter's hosts, and in a mesh datacenter
// never to a neighbour but inside WireGuard (README.md, "Fail closed").
//
// The rules never change; what they speak for is in sets, so a change of
// topology, role or devices is a change of set elements:
//   pools4/6     every weft network's CIDR            (interval)
//   local4/6     this datacenter's pools or subnets   (interval)
//   underlay4/6  other datacenters' hosts' underlay   (interval)
//                (and a mesh datacenter's own)
//   mesh4/6      a mesh neighbour's tunnel address     (interval)
//   tunnel_ifs   where remote traffic may leave        (ifname)
//   vxlan_ports  the cluster's VXLAN port              (inet_service)
//
//   desired = renderFailClosed(policy)          pure
//   actual  = listFailClosed(t)                 one libnftables listing
//   plan    = diffFailClosed(desired, actual)   pure: adds and removes per set
//   applyFailClosed(t, plan, phase)             one transaction per phase, nothing when empty
//
// The adds go before the routes that need them and the removes after (the
// caller runs the phases around the route changes). An add that would overlap
// an element being removed (a subnet replaced by the pool that holds it) takes
// that remove into its own transaction: an interval set refuses overlaps, and
// one transaction switches from one to the other with no moment between.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceAtomic } from '../../../controller/common/files';
import type { Logger } from '../../../controller/common/log';
import { canonicalIp, formatCidr, ipFamily, networkOf, parseCidr, type Cidr } from '../../../dataplane/netlink/ip';
import { AF_INET } from '../../../dataplane/netlink/libc';
import { openNft, type NftContext } from '../../../dataplane/nftables/libnftables';
import { tunnelDevices } from './policy';
import { FAIL_CLOSED_TABLE, WG_DEVICE, XDC_DEVICE, type FailClosedPolicy } from '../state/tunnel';

export const POLICY_CACHE_FILE = 'tunnel-policy.json';

export type SetName = 'pools4' | 'pools6' | 'local4' | 'local6' | 'underlay4' | 'underlay6' | 'mesh4' | 'mesh6' | 'tunnel_ifs' | 'vxlan_ports';
const SETS: Array<{ name: SetName; type: string; interval: boolean }> = [
  { name: 'pools4', type: 'ipv4_addr', interval: true },
  { name: 'pools6', type: 'ipv6_addr', interval: true },
  { name: 'local4', type: 'ipv4_addr', interval: true },
  { name: 'local6', type: 'ipv6_addr', interval: true },
  { name: 'underlay4', type: 'ipv4_addr', interval: true },
  { name: 'underlay6', type: 'ipv6_addr', interval: true },
  { name: 'mesh4', type: 'ipv4_addr', interval: true },
  { name: 'mesh6', type: 'ipv6_addr', interval: true },
  { name: 'tunnel_ifs', type: 'ifname', interval: false },
  { name: 'vxlan_ports', type: 'inet_service', interval: false },
];
export const SET_NAMES = SETS.map((s) => s.name);

/** Rule comments: how a listing recognises each rule, and the counter each drop reports under. */
export const RULE = {
  remote4: 'weft: an IPv4 address of another datacenter leaves only through the tunnel',
  remote6: 'weft: an IPv6 address of another datacenter leaves only through the tunnel',
  vxlan4: 'weft: no VXLAN to a host of another datacenter (IPv4)',
  vxlan6: 'weft: no VXLAN to a host of another datacenter (IPv6)',
  mesh4: 'weft: VXLAN to a mesh neighbour only inside WireGuard (IPv4)',
  mesh6: 'weft: VXLAN to a mesh neighbour only inside WireGuard (IPv6)',
  mss: 'weft: TCP MSS clamped to the route MTU on weft.xdc',
  intoTunnel: 'weft: forwarded into the tunnel (counted: a draining gateway waits for it to stand still)',
  fromTunnel: 'weft: forwarded out of the tunnel (counted: a draining gateway waits for it to stand still)',
} as const;

const CHAINS = [
  { name: 'output', hook: 'output' },
  { name: 'forward', hook: 'forward' },
] as const;

function ruleTexts(chain: (typeof CHAINS)[number]['name']): Array<{ body: string; comment: string }> {
  // forwarded packets only: the gateway's own probes go out by the output hook and must not count as traffic it carries
  const counted = chain === 'forward'
    ? [
      { body: `oifname "${XDC_DEVICE}" counter`, comment: RULE.intoTunnel },
      { body: `iifname "${XDC_DEVICE}" counter`, comment: RULE.fromTunnel },
    ]
    : [];
  return [
    { body: 'ip daddr @pools4 ip daddr != @local4 oifname != @tunnel_ifs counter drop', comment: RULE.remote4 },
    { body: 'ip6 daddr @pools6 ip6 daddr != @local6 oifname != @tunnel_ifs counter drop', comment: RULE.remote6 },
    { body: 'ip daddr @underlay4 udp dport @vxlan_ports counter drop', comment: RULE.vxlan4 },
    { body: 'ip6 daddr @underlay6 udp dport @vxlan_ports counter drop', comment: RULE.vxlan6 },
    // weft.wg0 gone (wireguard-go killed), the tunnel address would take the next route: never out in the clear
    { body: `ip daddr @mesh4 udp dport @vxlan_ports oifname != "${WG_DEVICE}" counter drop`, comment: RULE.mesh4 },
    { body: `ip6 daddr @mesh6 udp dport @vxlan_ports oifname != "${WG_DEVICE}" counter drop`, comment: RULE.mesh6 },
    { body: `oifname "${XDC_DEVICE}" tcp flags syn tcp option maxseg size set rt mtu`, comment: RULE.mss },
    ...counted,
  ];
}

/** The comments each chain's rules carry, in order: the table's structure as a listing shows it. */
export function expectedChains(): Map<string, string[]> {
  return new Map(CHAINS.map((c) => [c.name, ruleTexts(c.name).map((r) => r.comment)]));
}

/** The nft script that makes the table with its sets, chains and rules, empty. */
export function tableScript(): string {
  const t = `inet ${FAIL_CLOSED_TABLE}`;
  const lines = [`add table ${t}`];
  for (const s of SETS) lines.push(`add set ${t} ${s.name} { type ${s.type};${s.interval ? ' flags interval;' : ''} }`);
  for (const c of CHAINS) {
    // priority filter: after raw/mangle and conntrack, so a flow the rules drop is dropped whatever state it is in
    lines.push(`add chain ${t} ${c.name} { type filter hook ${c.hook} priority 0; policy accept; }`);
    for (const r of ruleTexts(c.name)) lines.push(`add rule ${t} ${c.name} ${r.body} comment ${JSON.stringify(r.comment)}`);
  }
  return lines.join('\n') + '\n';
}

// ---- render (pure) ----

export type SetElements = Map<SetName, string[]>;

const canonCidr = (c: Cidr) => formatCidr(networkOf(c));

/** An interval element as both render and listing give it: a CIDR with its prefix (a single address as /32 or /128). */
export function canonicalElement(s: string): string {
  if (s.includes('-')) return s; // a range only a hand edit makes: kept as listed, so diff removes it
  if (s.includes('/')) return canonCidr(parseCidr(s));
  const ip = canonicalIp(s);
  return `${ip}/${ipFamily(ip) === AF_INET ? 32 : 128}`;
}

const isV4 = (c: string) => !c.includes(':');

export function renderFailClosed(p: FailClosedPolicy): SetElements {
  const m: SetElements = new Map();
  const split = (xs: string[], v4: SetName, v6: SetName) => {
    const cs = xs.map(canonicalElement);
    m.set(v4, [...new Set(cs.filter(isV4))].sort());
    m.set(v6, [...new Set(cs.filter((c) => !isV4(c)))].sort());
  };
  split(p.pools, 'pools4', 'pools6');
  split(p.local, 'local4', 'local6');
  split(p.remoteUnderlays, 'underlay4', 'underlay6');
  split(p.meshTunnels ?? [], 'mesh4', 'mesh6');
  m.set('tunnel_ifs', [...new Set(tunnelDevices(p))].sort());
  m.set('vxlan_ports', p.vxlanPort > 0 ? [String(p.vxlanPort)] : []);
  return m;
}

// ---- list (one libnftables listing, parsed) ----

export type FailClosedView = {
  exists: boolean;
  /** Chain -> its rules' comments, in order. */
  chains: Map<string, string[]>;
  /** Sets that exist -> their elements. */
  elements: SetElements;
  /** Rule comment -> packets its counters saw, summed over chains. */
  counters: Map<string, number>;
};

/** Parse `nft list table inet weft_xdc` output (the text form nft prints). */
export function parseListing(text: string): FailClosedView {
  const view: FailClosedView = { exists: text.trim() !== '', chains: new Map(), elements: new Map(), counters: new Map() };
  if (!view.exists) return view;
  for (const m of text.matchAll(/\n\tset (\S+) \{([\s\S]*?)\n\t\}/g)) {
    const name = m[1] as SetName;
    const body = m[2];
    const els = /elements = \{([\s\S]*?)\}/.exec(body);
    const items = els ? els[1].split(',').map((x) => x.trim()).filter((x) => x !== '') : [];
    const interval = SETS.find((s) => s.name === name)?.interval ?? false;
    view.elements.set(name, items.map((x) => (x.startsWith('"') ? JSON.parse(x) as string : interval ? canonicalElement(x) : x)).sort());
  }
  for (const m of text.matchAll(/\n\tchain (\S+) \{([\s\S]*?)\n\t\}/g)) {
    const comments: string[] = [];
    for (const line of m[2].split('\n')) {
      const t = line.trim();
      if (t === '' || t.startsWith('type ')) continue;
      const c = /comment "((?:[^"\\]|\\.)*)"\s*$/.exec(t);
      const comment = c ? c[1] : '';
      comments.push(comment);
      const k = /counter packets (\d+) bytes \d+/.exec(t);
      if (k) view.counters.set(comment, (view.counters.get(comment) ?? 0) + Number(k[1]));
    }
    view.chains.set(m[1], comments);
  }
  return view;
}

export function listFailClosed(t: NftContext): FailClosedView {
  let text: string;
  try {
    text = t.run(`list table inet ${FAIL_CLOSED_TABLE}`, `nft list table inet ${FAIL_CLOSED_TABLE}`);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return { exists: false, chains: new Map(), elements: new Map(), counters: new Map() };
    throw e;
  }
  return parseListing(text);
}

// ---- diff (pure) ----

export type SetChange = { add: string[]; remove: string[] };
export type FailClosedPlan = {
  /** The table, a chain or a rule is missing or not ours: make it all again, with every element, in one transaction. */
  rebuild: boolean;
  sets: Map<SetName, SetChange>;
};

function sameStructure(v: FailClosedView): boolean {
  if (!v.exists) return false;
  for (const [chain, comments] of expectedChains()) {
    const have = v.chains.get(chain);
    if (!have || have.length !== comments.length || have.some((c, i) => c !== comments[i])) return false;
  }
  return SETS.every((s) => v.elements.has(s.name));
}

export function diffFailClosed(desired: SetElements, actual: FailClosedView): FailClosedPlan {
  const sets = new Map<SetName, SetChange>();
  const rebuild = !sameStructure(actual);
  for (const s of SETS) {
    const want = desired.get(s.name) ?? [];
    const have = rebuild ? [] : (actual.elements.get(s.name) ?? []);
    const w = new Set(want);
    const h = new Set(have);
    const change = { add: want.filter((x) => !h.has(x)), remove: have.filter((x) => !w.has(x)) };
    if (change.add.length > 0 || change.remove.length > 0) sets.set(s.name, change);
  }
  return { rebuild, sets };
}

export function failClosedPlanSize(p: FailClosedPlan): number {
  let n = p.rebuild ? 1 : 0;
  for (const c of p.sets.values()) n += c.add.length + c.remove.length;
  return n;
}

function overlaps(a: string, b: string): boolean {
  if (a.includes('-') || b.includes('-')) return true; // a hand-made range: assume the worst, remove it with the add
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x.family !== y.family) return false;
  const len = Math.min(x.prefixLen, y.prefixLen);
  return networkOf({ ...x, prefixLen: len }).ip === networkOf({ ...y, prefixLen: len }).ip;
}

const quote = (set: SetName, x: string) => (set === 'tunnel_ifs' ? JSON.stringify(x) : x);

/**
 * The nft commands of one phase: 'add' puts in every added element (and
 * removes, in the same transaction, any element an add overlaps), 'remove'
 * takes out the rest, 'all' does both. A rebuild is the whole table (deleted
 * and made again with every element) in the 'add' or 'all' phase.
 */
export function phaseScript(plan: FailClosedPlan, phase: 'add' | 'remove' | 'all', desired: SetElements, exists: boolean): string {
  const t = `inet ${FAIL_CLOSED_TABLE}`;
  if (plan.rebuild) {
    if (phase === 'remove') return '';
    let s = exists ? `delete table ${t}\n` : '';
    s += tableScript();
    for (const set of SETS) {
      const els = desired.get(set.name) ?? [];
      if (els.length > 0) s += `add element ${t} ${set.name} { ${els.map((x) => quote(set.name, x)).join(', ')} }\n`;
    }
    return s;
  }
  const lines: string[] = [];
  for (const [set, c] of plan.sets) {
    const interval = SETS.find((s) => s.name === set)!.interval;
    const early = phase === 'all' ? c.remove : phase === 'add' && interval ? c.remove.filter((r) => c.add.some((a) => overlaps(a, r))) : [];
    const late = phase === 'remove' ? (interval ? c.remove.filter((r) => !c.add.some((a) => overlaps(a, r))) : c.remove) : [];
    const dels = [...early, ...late];
    if (dels.length > 0) lines.push(`delete element ${t} ${set} { ${dels.map((x) => quote(set, x)).join(', ')} }`);
    if (phase !== 'remove' && c.add.length > 0) lines.push(`add element ${t} ${set} { ${c.add.map((x) => quote(set, x)).join(', ')} }`);
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

// ---- the table, kept ----

export type FailClosedResult = { transactions: number; changes: number; rebuilt: boolean };

export type FailClosedTable = {
  /** What the rules speak for now (the last policy given). */
  readonly policy: FailClosedPolicy | undefined;
  /** Render, list, diff and send one phase; nothing is sent when the kernel already agrees. */
  apply(p: FailClosedPolicy, phase: 'add' | 'remove' | 'all'): FailClosedResult;
  /** Packets each drop rule has dropped (by rule comment), from one listing. */
  dropped(): Map<string, number>;
  /** Packets forwarded into or out of weft.xdc so far, from one listing (0 without a table). */
  forwarded(): number;
  close(): void;
};

export function openFailClosed(o: { netns?: string; log: Logger }): FailClosedTable {
  // libnftables for all of it: the table is small and changes seldom, and nft's listing carries the counters
  const t = openNft(o.netns);
  let policy: FailClosedPolicy | undefined;
  return {
    get policy() {
      return policy;
    },
    apply(p, phase) {
      policy = p;
      const desired = renderFailClosed(p);
      const actual = listFailClosed(t);
      // a cluster of one datacenter speaks for no address: no table is made for it (one made earlier is kept, emptied)
      if (!actual.exists && p.pools.length === 0 && p.remoteUnderlays.length === 0) return { transactions: 0, changes: 0, rebuilt: false };
      const plan = diffFailClosed(desired, actual);
      const script = phaseScript(plan, phase, desired, actual.exists);
      if (script === '') return { transactions: 0, changes: 0, rebuilt: false };
      t.run(script, `fail-closed table (${phase})`);
      const changes = failClosedPlanSize(plan);
      o.log.info(
        { phase, rebuilt: plan.rebuild, sets: Object.fromEntries([...plan.sets].map(([k, v]) => [k, { add: v.add.length, remove: v.remove.length }])) },
        plan.rebuild ? `fail-closed table ${FAIL_CLOSED_TABLE} made` : `fail-closed table ${FAIL_CLOSED_TABLE}: sets changed (${phase})`,
      );
      return { transactions: 1, changes, rebuilt: plan.rebuild };
    },
    dropped() {
      const v = listFailClosed(t);
      const out = new Map<string, number>();
      const notDrops: string[] = [RULE.mss, RULE.intoTunnel, RULE.fromTunnel];
      for (const [comment, n] of v.counters) if (!notDrops.includes(comment)) out.set(comment, n);
      return out;
    },
    forwarded() {
      const v = listFailClosed(t);
      return (v.counters.get(RULE.intoTunnel) ?? 0) + (v.counters.get(RULE.fromTunnel) ?? 0);
    },
    close: () => t.close(),
  };
}

// ---- the cache: what is applied first at the next start ----

function isPolicy(x: unknown): x is FailClosedPolicy {
  const p = x as FailClosedPolicy;
  const strings = (a: unknown) => Array.isArray(a) && a.every((s) => typeof s === 'string');
  return typeof p === 'object' && p !== null && (p.role === 'host' || p.role === 'gateway') && strings(p.pools) && strings(p.local) &&
    strings(p.remoteUnderlays) && strings(p.overlayDevices) && Number.isInteger(p.vxlanPort);
}

/** The cached policy; undefined when there is none or it cannot be read (then the agent starts open, as before datacenters). */
export async function readPolicyCache(stateDir: string, log: Logger): Promise<FailClosedPolicy | undefined> {
  const path = join(stateDir, POLICY_CACHE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err, path }, 'cannot read the cached fail-closed policy');
    return undefined;
  }
  try {
    const p = JSON.parse(text) as unknown;
    if (isPolicy(p)) return p;
  } catch {
    // reported below
  }
  log.warn({ path }, 'the cached fail-closed policy is not valid; it is replaced at the first topology snapshot');
  return undefined;
}

export async function writePolicyCache(stateDir: string, p: FailClosedPolicy): Promise<void> {
  await replaceAtomic(join(stateDir, POLICY_CACHE_FILE), JSON.stringify(p) + '\n', 0o644);
}

export const samePolicy = (a: FailClosedPolicy | undefined, b: FailClosedPolicy): boolean => a !== undefined && JSON.stringify(a) === JSON.stringify(b);
