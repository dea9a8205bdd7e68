// `weft status`, `weft hosts` (also `weft host list`) and `weft endpoints`:
// what the cluster looks like, through the API with an admin identity as
// `weft service` does, so they work from any machine holding the admin
// certificate. Tables for people, --json for scripts; a bad flag exits 2
// naming it, before anything is connected.
import type { Endpoint, HostStatus, ListHostsResponse, Status, TunnelPathSummary } from '../api/proto';
import { checkHostName, checkName } from '../api/validate';
import { ADMIN_CLIENT_HELP, ADMIN_CLIENT_SPEC, JSON_FLAG, type Spec, UsageError, guarded, withAdminClient, hostCommand as hostStoreCommand, parse, table } from './commands';
import { rotateKeyCommand } from './key-commands';
import { pathLine } from './tunnel-text';

const GRPC_UNIMPLEMENTED = 12;

const ADMIN_FLAGS = { storeFlags: ['--data-dir'] };

const wantsHelp = (argv: string[]) => argv.includes('--help') || argv.includes('-h');

/** "0s", "42s", "3m12s", "2h5m", "3d4h": a span at a glance. */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600) ? `${Math.floor((s % 86_400) / 3600)}h` : ''}`;
}

/** When the host's first lease ends, by the controller's clock: "in 40s", "45s ago", "-" without leases. */
export function leaseExpiry(h: HostStatus, now: number): string {
  const ends = (h.host?.subnets ?? []).map((s) => s.lease_expires_at_unix_ms);
  if (ends.length === 0) return '-';
  const first = Math.min(...ends);
  return first >= now ? `in ${formatSpan(first - now)}` : `${formatSpan(now - first)} ago`;
}

/** The agent version the host last reported, else the one it registered with. */
const versionOf = (h: HostStatus) => h.reported_agent_version || h.host?.agent_version || '-';

// ---- weft hosts -------------------------------------------------------------

const HOSTS_HELP = `usage: weft hosts [--json]          (also: weft host list)
  every registered host: rack, datacenter, health, underlay address, VTEP MAC, subnets per network,
  when its first lease ends, agent version, last heartbeat, and the overlay entries its agent last
  reported: PROGRAMMED/DESIRED and FAILED (entries the kernel refused), "-" before its first report
  health: alive (heard from within 2/3 of the lease TTL), stale (within the TTL), expired (silent
  longer: its leases may be reclaimed)
${ADMIN_CLIENT_HELP}`;

export function hostRows(list: Pick<ListHostsResponse, 'hosts' | 'now_unix_ms'>): string[][] {
  const rows = [['NAME', 'RACK', 'DATACENTER', 'HEALTH', 'UNDERLAY', 'VTEP-MAC', 'SUBNETS', 'LEASE-ENDS', 'VERSION', 'HEARTBEAT', 'PROGRAMMED', 'FAILED']];
  for (const s of list.hosts) {
    const h = s.host!;
    const subnets = h.subnets.map((x) => `${x.network}=${x.subnet}`).join(',');
    rows.push([
      h.name, h.rack || '-', h.datacenter || '-', s.health, h.underlay_ip, h.vtep_mac, subnets || '-', leaseExpiry(s, list.now_unix_ms),
      versionOf(s), `${formatSpan(s.heartbeat_age_ms)} ago`,
      s.overlay ? `${s.overlay.programmed}/${s.overlay.desired}` : '-', s.overlay ? String(s.overlay.failed) : '-',
    ]);
  }
  return rows;
}

/** One flat object per host for scripts: the host's fields with its health and report beside them. */
export function hostsJson(list: ListHostsResponse): unknown[] {
  return list.hosts.map((s) => ({
    ...s.host, agent_version: versionOf(s) === '-' ? '' : versionOf(s),
    health: s.health, heartbeat_age_ms: s.heartbeat_age_ms, overlay: s.overlay, reported_at_unix_ms: s.reported_at_unix_ms,
  }));
}

/** `weft hosts` and `weft host list`, beside the administrator's connection flags. */
export const HOSTS_FLAGS: Spec = { ...JSON_FLAG };

/** `label`: how errors name the command the operator typed. */
export async function hostsCommand(argv: string[], label = 'hosts'): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(HOSTS_HELP);
    return 0;
  }
  return guarded(label, async () => {
    const { flags, config } = parse(argv, { ...ADMIN_CLIENT_SPEC, ...HOSTS_FLAGS }, ADMIN_FLAGS);
    await withAdminClient(flags, config, async (client) => {
      const list = await client.call('ListHosts', {});
      if (flags.has('--json')) process.stdout.write(JSON.stringify(hostsJson(list)) + '\n');
      else if (list.hosts.length === 0) process.stdout.write('no hosts (a host joins with weft agent and a token from weft token create)\n');
      else process.stdout.write(table(hostRows(list)));
    });
    return 0;
  });
}

/** `weft host list` is `weft hosts`; `weft host delete` acts on the store as before. */
export function hostCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'list') return hostsCommand(argv.slice(1), 'host list');
  if (argv[0] === 'rotate-key') return rotateKeyCommand(argv.slice(1));
  return hostStoreCommand(argv);
}

// ---- weft endpoints ---------------------------------------------------------

const ENDPOINTS_HELP = `usage: weft endpoints [--network NAME] [--host NAME] [--json]
  the containers' endpoints the controller holds: container id (first 12 characters; --json has it
  whole), network, address, host, interface in the container, labels
${ADMIN_CLIENT_HELP}`;

/** Container ids are 64 hex digits; 12 tell them apart in practice, as docker and podman show them. */
export const shortId = (id: string) => id.slice(0, 12);

export function endpointRows(endpoints: Endpoint[]): string[][] {
  const labels = (l: Record<string, string>) => Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');
  return [
    ['CONTAINER', 'NETWORK', 'ADDRESS', 'HOST', 'INTERFACE', 'LABELS'],
    ...endpoints.map((e) => [shortId(e.container_id), e.network, e.ip, e.host, e.ifname || '-', labels(e.labels) || '-']),
  ];
}

/** The ListEndpoints filter the flags ask for, each checked by the controller's own rules. */
export function endpointFilter(flags: Map<string, string | true>): { network: string; host: string } {
  const network = (flags.get('--network') as string | undefined) ?? '';
  const host = (flags.get('--host') as string | undefined) ?? '';
  const badNet = network === '' ? undefined : checkName(network, '--network');
  if (badNet) throw new UsageError(badNet);
  const badHost = host === '' ? undefined : checkHostName(host, '--host');
  if (badHost) throw new UsageError(badHost);
  return { network, host };
}

export const ENDPOINTS_FLAGS: Spec = { ...JSON_FLAG, '--network': 'a network name', '--host': 'a host name' };

export async function endpointsCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(ENDPOINTS_HELP);
    return 0;
  }
  return guarded('endpoints', async () => {
    const { flags, config } = parse(argv, { ...ADMIN_CLIENT_SPEC, ...ENDPOINTS_FLAGS }, ADMIN_FLAGS);
    const filter = endpointFilter(flags);
    await withAdminClient(flags, config, async (client) => {
      const { endpoints } = await client.call('ListEndpoints', filter);
      if (flags.has('--json')) process.stdout.write(JSON.stringify(endpoints) + '\n');
      else if (endpoints.length === 0) process.stdout.write('no endpoints\n');
      else process.stdout.write(table(endpointRows(endpoints)));
    });
    return 0;
  });
}

// ---- weft status --------------------------------------------------------------

const STATUS_HELP = `usage: weft status [--json]
  the controller answering (id, version, store, revision), the leader, counts, the hosts per
  datacenter and rack by health (see weft hosts), and per ordered pair of datacenters the gateway
  their hosts chose and the failovers, as the agents reported them (see weft datacenter list)
${ADMIN_CLIENT_HELP}`;

export type Placement = { datacenter: string; rack: string; hosts: number; alive: number; stale: number; expired: number };

/** Hosts per datacenter and rack ("" where a host names none), with how many are in each health. */
export function placements(hosts: HostStatus[]): Placement[] {
  const by = new Map<string, Placement>();
  for (const s of hosts) {
    const datacenter = s.host?.datacenter ?? '';
    const rack = s.host?.rack ?? '';
    const k = `${datacenter}\0${rack}`;
    let p = by.get(k);
    if (!p) by.set(k, (p = { datacenter, rack, hosts: 0, alive: 0, stale: 0, expired: 0 }));
    p.hosts++;
    if (s.health === 'alive' || s.health === 'stale' || s.health === 'expired') p[s.health]++;
  }
  const key = (p: Placement) => `${p.datacenter}\0${p.rack}`;
  return [...by.values()].sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

/** `hostCount`: the status's own count, when the hosts themselves could not be listed; `paths`: one line per pair of datacenters. */
export function statusText(status: Status, hosts: HostStatus[], hostCount?: number, paths: TunnelPathSummary[] = []): string {
  const leader = status.leader_id
    ? `${status.leader_id}${status.leader_id === status.controller_id ? ' (this controller)' : ''}`
    : status.leader ? `${status.controller_id} (this controller)` : 'none known';
  const places = placements(hosts);
  const sum = (k: 'alive' | 'stale' | 'expired') => places.reduce((n, p) => n + p[k], 0);
  const rows: Array<[string, string | number]> = [
    ['controller', status.controller_id], ['leader', leader], ['version', status.version || '-'], ['store', status.store],
    ['revision', status.revision],
    ['hosts', hostCount !== undefined ? hostCount : `${hosts.length} (${sum('alive')} alive, ${sum('stale')} stale, ${sum('expired')} expired)`],
    ['leases', status.leases], ['endpoints', status.endpoints], ['services', status.services], ['datacenters', status.datacenters],
  ];
  let out = rows.map(([k, v]) => `${k.padEnd(13)}${v}`).join('\n') + '\n';
  if (places.length > 0) {
    out += '\n' + table([
      ['DATACENTER', 'RACK', 'HOSTS', 'ALIVE', 'STALE', 'EXPIRED'],
      ...places.map((p) => [p.datacenter || '-', p.rack || '-', String(p.hosts), String(p.alive), String(p.stale), String(p.expired)]),
    ]);
  }
  if (paths.length > 0) out += '\n' + paths.map((p) => `${'tunnel'.padEnd(13)}${pathLine(p)}`).join('\n') + '\n';
  return out;
}

export const STATUS_FLAGS: Spec = { ...JSON_FLAG };

export async function statusCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(STATUS_HELP);
    return 0;
  }
  return guarded('status', async () => {
    const { flags, config } = parse(argv, { ...ADMIN_CLIENT_SPEC, ...STATUS_FLAGS }, ADMIN_FLAGS);
    await withAdminClient(flags, config, async (client) => {
      const status = await client.call('GetStatus', {});
      // a controller older than ListHosts (during a rolling upgrade) still gives its status, without the hosts' health
      const hosts = await client.call('ListHosts', {}).then((r) => r.hosts, (err) => {
        if ((err as { code?: number }).code !== GRPC_UNIMPLEMENTED) throw err;
        process.stderr.write(`weft status: ${status.controller_id} does not serve ListHosts (version ${status.version || 'unknown'}): no hosts per rack\n`);
        return undefined;
      });
      // likewise a controller older than ListTunnels: no tunnel lines
      const paths = await client.call('ListTunnels', {}).then((r) => r.paths, (err) => {
        if ((err as { code?: number }).code !== GRPC_UNIMPLEMENTED) throw err;
        return undefined;
      });
      if (flags.has('--json')) {
        process.stdout.write(JSON.stringify({ ...status, ...(hosts && { placements: placements(hosts) }), ...(paths && { tunnels: paths }) }) + '\n');
      } else process.stdout.write(hosts ? statusText(status, hosts, undefined, paths) : statusText(status, [], status.hosts, paths));
    });
    return 0;
  });
}
