// weft's forwarding and NAT policy rendered as a rule set. Pure: input is the
// cluster's configuration, output the chains and hooks for one address
// family. Everything is validated first, with errors naming the field.
import { InvalidArgumentError } from '../netlink/errors';
import { type Cidr, formatCidr, networkOf, parseCidr } from '../netlink/ip';
import { AF_INET } from '../netlink/libc';
import type { Family, RuleSet } from './model';

export type WeftNetwork = {
  name: string;
  cidr: string;
  /** The host bridge holding this network's containers (with br_netfilter its bridged frames pass FORWARD too). */
  bridge?: string;
  /** Traffic to and from other weft networks is dropped unless both networks say false. Default true. */
  isolated?: boolean;
};

export type WeftPolicyInput = {
  /** Every address any container in the cluster may have: traffic to these is never masqueraded. */
  clusterCidrs: string[];
  networks: WeftNetwork[];
  /**
   * The subnets this host leased for its own containers. When given, only
   * their traffic is masqueraded here (a host forwarding other hosts'
   * traffic leaves it alone); otherwise whole network CIDRs are.
   */
  hostSubnets?: string[];
};

export const CHAINS = {
  forward: 'WEFT-FORWARD',
  networks: 'WEFT-NETWORKS',
  isolation: 'WEFT-ISOLATION',
  postrouting: 'WEFT-POSTROUTING',
  masquerade: 'WEFT-MASQ',
} as const;

const NET_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const IFNAME_RE = /^[^\s/:"'\\]{1,15}$/;

type Parsed = { text: string; cidr: Cidr; family: Family };

function cidrField(field: string, value: unknown): Parsed {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field}: expected a CIDR string, got ${JSON.stringify(value)}`);
  if (!value.includes('/')) throw new InvalidArgumentError(`${field}: "${value}" is not a CIDR (missing "/prefix")`);
  let cidr: Cidr;
  try {
    cidr = parseCidr(value);
  } catch (e) {
    throw new InvalidArgumentError(`${field}: ${(e as Error).message}`);
  }
  const net = networkOf(cidr);
  if (net.ip !== cidr.ip) {
    throw new InvalidArgumentError(`${field}: "${value}" has host bits set (the network is ${formatCidr(net)})`);
  }
  // iptables-save prints the compressed form; rendering it the same way keeps re-applies a no-op
  return { text: formatCidr(cidr), cidr, family: cidr.family === AF_INET ? 4 : 6 };
}

function contains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefixLen >= outer.prefixLen && networkOf({ ...inner, prefixLen: outer.prefixLen }).ip === outer.ip;
}

function list(field: string, v: unknown, required: boolean): unknown[] {
  if (v === undefined && !required) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${field}: expected an array`);
  return v;
}

type Net = { name: string; cidr: Parsed; bridge?: string; isolated: boolean };

function validate(input: WeftPolicyInput): { clusters: Parsed[]; nets: Net[]; hostSubnets: Parsed[] | undefined } {
  if (!input || typeof input !== 'object') throw new InvalidArgumentError('policy input must be an object');
  const clusters = list('clusterCidrs', input.clusterCidrs, true).map((c, i) => cidrField(`clusterCidrs[${i}]`, c));
  if (clusters.length === 0) throw new InvalidArgumentError('clusterCidrs: at least one cluster CIDR is required');
  const nets: Net[] = [];
  for (const [i, n] of list('networks', input.networks, true).entries()) {
    const f = `networks[${i}]`;
    const net = n as WeftNetwork;
    if (!net || typeof net !== 'object') throw new InvalidArgumentError(`${f}: expected an object`);
    if (typeof net.name !== 'string' || !NET_NAME_RE.test(net.name)) {
      throw new InvalidArgumentError(`${f}.name: invalid network name ${JSON.stringify(net.name)} (1-64 of [A-Za-z0-9_.-])`);
    }
    if (nets.some((o) => o.name === net.name)) throw new InvalidArgumentError(`${f}.name: network "${net.name}" listed twice`);
    const cidr = cidrField(`${f}.cidr`, net.cidr);
    if (!clusters.some((c) => contains(c.cidr, cidr.cidr))) {
      throw new InvalidArgumentError(`${f}.cidr: ${cidr.text} is not inside any of clusterCidrs (${clusters.map((c) => c.text).join(', ')})`);
    }
    const clash = nets.find((o) => contains(o.cidr.cidr, cidr.cidr) || contains(cidr.cidr, o.cidr.cidr));
    if (clash) throw new InvalidArgumentError(`${f}.cidr: ${cidr.text} overlaps network "${clash.name}" (${clash.cidr.text})`);
    if (net.bridge !== undefined && (typeof net.bridge !== 'string' || !IFNAME_RE.test(net.bridge) || net.bridge === '.' || net.bridge === '..')) {
      throw new InvalidArgumentError(`${f}.bridge: invalid interface name ${JSON.stringify(net.bridge)} (1-15 characters, no whitespace, "/" or ":")`);
    }
    if (net.isolated !== undefined && typeof net.isolated !== 'boolean') throw new InvalidArgumentError(`${f}.isolated: expected true or false`);
    nets.push({ name: net.name, cidr, bridge: net.bridge, isolated: net.isolated ?? true });
  }
  let hostSubnets: Parsed[] | undefined;
  if (input.hostSubnets !== undefined) {
    hostSubnets = list('hostSubnets', input.hostSubnets, false).map((s, i) => {
      const p = cidrField(`hostSubnets[${i}]`, s);
      if (!nets.some((n) => contains(n.cidr.cidr, p.cidr))) throw new InvalidArgumentError(`hostSubnets[${i}]: ${p.text} is not inside any network's CIDR`);
      return p;
    });
  }
  return { clusters, nets, hostSubnets };
}

/** weft's rules for one address family (default IPv4); a family without weft networks gets an empty rule set. */
export function weftRules(input: WeftPolicyInput, opts: { family?: Family } = {}): RuleSet {
  const family = opts.family ?? 4;
  const v = validate(input);
  const nets = v.nets.filter((n) => n.cidr.family === family);
  if (nets.length === 0) return { chains: [], hooks: [] };
  const clusters = v.clusters.filter((c) => c.family === family);
  const sources = (v.hostSubnets ?? nets.map((n) => n.cidr)).filter((s) => s.family === family);

  const forward = [
    ...nets.filter((n) => n.bridge).map((n) => `-i ${n.bridge} -o ${n.bridge} -j ACCEPT`),
    ...nets.flatMap((n) => [`-s ${n.cidr.text} -j ${CHAINS.networks}`, `-d ${n.cidr.text} -j ${CHAINS.networks}`]),
  ];
  // n·(n-1) rules: fine for the tens of networks a cluster has.
  const isolation = nets.flatMap((a) =>
    nets.filter((b) => b !== a && (a.isolated || b.isolated)).map((b) => `-s ${a.cidr.text} -d ${b.cidr.text} -j DROP`),
  );
  const networks = [
    // isolation first, so adding it also cuts flows that were already established
    ...(isolation.length ? [`-j ${CHAINS.isolation}`] : []),
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-j ACCEPT',
  ];
  const masq = [...clusters.map((c) => `-d ${c.text} -j RETURN`), '-j MASQUERADE'];

  return {
    chains: [
      { table: 'filter', name: CHAINS.forward, rules: forward },
      { table: 'filter', name: CHAINS.networks, rules: networks },
      ...(isolation.length ? [{ table: 'filter' as const, name: CHAINS.isolation, rules: isolation }] : []),
      { table: 'nat', name: CHAINS.postrouting, rules: sources.map((s) => `-s ${s.text} -j ${CHAINS.masquerade}`) },
      { table: 'nat', name: CHAINS.masquerade, rules: masq },
    ],
    hooks: [
      { table: 'filter', from: 'FORWARD', to: CHAINS.forward },
      { table: 'nat', from: 'POSTROUTING', to: CHAINS.postrouting },
    ],
  };
}
