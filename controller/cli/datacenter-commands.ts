// `weft datacenter add|list|delete|gateway` (and `weft datacenters`): the
// datacenters and their WireGuard gateways, through the API with an admin
// identity as `weft service` does. Every flag is checked with the
// controller's own request rules before connecting, so a mistake exits 2
// naming the flag; what only the controller can judge (is the host
// registered there, would too few gateways remain) exits 1 with its reason.
import type { CreateDatacenterRequest, Datacenter, ListDatacentersResponse, ListTunnelsResponse } from '../api/proto';
import { InvalidArgumentError } from '../api/validate';
import { checkCreateDatacenter, checkDeleteDatacenter, checkGatewayRequest } from '../service/datacenter-requests';
import { ADMIN_CLIENT_HELP, ADMIN_CLIENT_SPEC, JSON_FLAG, type Spec, UsageError, guarded, subcommandHelp, withAdminClient, parse, table } from './commands';
import { pathRows, peerHandshakes } from './tunnel-text';

const GRPC_UNIMPLEMENTED = 12;

const DATACENTER_HELP = `usage: weft datacenter add DC --gateways HOST,HOST [--wan HOST=IP:PORT ...] [--listen-port N] [--mtu N] [--mesh]
                           [--allow-single-gateway]
       weft datacenter list [--json]          (also: weft datacenters)
       weft datacenter gateway add DC HOST [--wan IP:PORT]
       weft datacenter gateway drain DC HOST
       weft datacenter gateway remove DC HOST
       weft datacenter delete DC [--force]
  --gateways  the hosts that carry DC's traffic to the other datacenters: registered hosts whose agent runs
              with --datacenter DC; at least two (one may fail or be drained) unless --allow-single-gateway
  --wan       where the other datacenters reach a gateway (IPv6 as [ADDR]:PORT); default: the host's
              underlay address and the listen port. Repeat the flag or separate with commas
  --listen-port  WireGuard UDP port on the gateways (default 51820)
  --mtu       tunnel MTU, 1280-9216 (default: derived from the underlay)
  --mesh      encrypt host-to-host traffic inside DC too
  gateway add    adds HOST as a gateway, or updates it: a new --wan, and active again after a drain
  gateway drain  HOST takes no new peers; the other gateways carry its traffic (the last active one cannot drain)
  delete      refused while registered hosts are in DC; --force deletes anyway
  Public keys are never given here: each host registers its own.
  list shows each gateway's state, its key's first 8 characters and its peers' last handshakes, and for
  each ordered pair of datacenters the gateway its hosts chose (hosts per choice) and their failovers,
  as the agents last reported them ("no report" where none did)
${ADMIN_CLIENT_HELP}`;

/** Which flag or argument sets a field of the datacenter requests. */
export function flagOfDatacenterField(field: string): string {
  if (field === 'name' || field === 'datacenter') return 'DC';
  if (field === 'host') return 'HOST';
  const m = /^([a-z_]+)(\[\d+\])?(\.([a-z_]+))?/.exec(field);
  if (!m) return field;
  if (m[1] === 'gateways') return m[4] === 'wan_endpoint' ? '--wan' : '--gateways';
  return ({ wan_endpoint: '--wan', listen_port: '--listen-port', mtu: '--mtu', mesh: '--mesh', force: '--force' } as Record<string, string>)[m[1]] ?? field;
}

/** Runs a request check, turning its refusal into a usage error that names the flag. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new UsageError(`${flagOfDatacenterField(err.field ?? '')}: ${err.message}`);
    throw err;
  }
}

/** A whole number flag, or a UsageError naming it; the range is the request rules' to say. */
function wholeNumber(flag: string, v: string | true | undefined): number {
  if (v === undefined) return 0;
  if (typeof v !== 'string' || !/^\d{1,6}$/.test(v)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a whole number`);
  return Number(v);
}

/** The datacenter commands' own flags, beside the administrator's connection flags. */
export const DATACENTER_ADD_FLAGS: Spec = {
  '--gateways': { list: 'HOST[,HOST...]' },
  '--wan': { list: 'HOST=IP:PORT' },
  '--listen-port': 'a port number',
  '--mtu': 'a whole number (1280-9216)',
  '--mesh': 'bool',
  '--allow-single-gateway': 'bool',
};
export const DATACENTER_LIST_FLAGS: Spec = { ...JSON_FLAG };
export const DATACENTER_DELETE_FLAGS: Spec = { '--force': 'bool' };
/** gateway add, drain and remove: only add takes --wan. */
export const DATACENTER_GATEWAY_FLAGS: Spec = { '--wan': 'IP:PORT' };

/** "h7=203.0.113.7:51820" items: host -> endpoint, each host one of `gateways`. */
export function parseWanFlags(items: string[], gateways: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--wan: ${JSON.stringify(item)} is not HOST=IP:PORT`);
    const host = item.slice(0, eq);
    if (!gateways.includes(host)) throw new UsageError(`--wan: ${JSON.stringify(host)} is not one of --gateways (${gateways.join(', ') || 'none'})`);
    if (out.has(host)) throw new UsageError(`--wan: host ${JSON.stringify(host)} given twice`);
    const endpoint = item.slice(eq + 1);
    if (endpoint === '') throw new UsageError(`--wan: ${JSON.stringify(item)} has no endpoint (leave the host out of --wan for its underlay address)`);
    out.set(host, endpoint);
  }
  return out;
}

/** The CreateDatacenter request the add flags describe, checked by the controller's rules (the networks are the controller's to say). */
export function datacenterFromFlags(argv: readonly string[]): { request: CreateDatacenterRequest; parsed: ReturnType<typeof parse> } {
  const parsed = parse(argv, { ...ADMIN_CLIENT_SPEC, ...DATACENTER_ADD_FLAGS }, { positional: 1, storeFlags: ['--data-dir'] });
  const { flags, lists, positional } = parsed;
  if (positional.length !== 1) throw new UsageError('give the name of the datacenter (weft datacenter add DC --gateways HOST,HOST)');
  const gateways = lists.get('--gateways') ?? [];
  if (gateways.length === 0) throw new UsageError('--gateways is required (the hosts that carry the datacenter\'s traffic, e.g. --gateways h7,h8)');
  const wan = parseWanFlags(lists.get('--wan') ?? [], gateways);
  const request: CreateDatacenterRequest = {
    name: positional[0],
    gateways: gateways.map((host) => ({ host, wan_endpoint: wan.get(host) ?? '' })),
    listen_port: wholeNumber('--listen-port', flags.get('--listen-port')),
    mtu: wholeNumber('--mtu', flags.get('--mtu')),
    mesh: flags.has('--mesh'),
    allow_single_gateway: flags.has('--allow-single-gateway'),
  };
  asUsage(() => checkCreateDatacenter(request, []));
  return { request, parsed };
}

/**
 * One row per gateway (the datacenter's own columns on its first), then the
 * datacenters hosts name without a record. With `tunnels` (ListTunnels), the
 * gateway's peers and their last handshakes as its agent reported them.
 */
export function datacenterRows(list: Pick<ListDatacentersResponse, 'datacenters' | 'undeclared'>, tunnels?: Pick<ListTunnelsResponse, 'datacenters'>): string[][] {
  const head = ['DATACENTER', 'HOSTS', 'PORT', 'MTU', 'MESH', 'GATEWAY', 'STATE', 'WAN-ENDPOINT', 'KEY'];
  const rows = [tunnels ? [...head, 'PEERS (LAST HANDSHAKE)'] : head];
  const reported = (dc: string, host: string) => tunnels?.datacenters.find((d) => d.name === dc)?.gateways.find((g) => g.host === host);
  for (const d of list.datacenters) {
    const own = [d.name, String(d.host_count), String(d.listen_port), d.mtu ? String(d.mtu) : 'auto', d.mesh ? 'yes' : 'no'];
    const gws = d.gateways.length > 0 ? d.gateways : [undefined];
    gws.forEach((g, i) => {
      const first = i === 0 ? own : own.map(() => '');
      // no key: the host left, moved to another datacenter, or registered none; no peer can be set up to it.
      // A key shows as its first 8 characters: enough to tell keys apart and to see a rotation land.
      const row = [...first, g?.host ?? '-', g?.state ?? '-', g?.wan_endpoint ?? '-', g ? (g.wg_public_key ? g.wg_public_key.slice(0, 8) : 'missing') : '-'];
      rows.push(tunnels ? [...row, g ? peerHandshakes(reported(d.name, g.host)) : '-'] : row);
    });
  }
  for (const [name, hosts] of Object.entries(list.undeclared).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const row = [name, String(hosts), '-', '-', '-', '(no record: weft datacenter add)', '', '', ''];
    rows.push(tunnels ? [...row, ''] : row);
  }
  return rows;
}

/** The datacenter list as text: gateways, then which gateway each pair of datacenters goes through. */
export function datacenterListText(list: Pick<ListDatacentersResponse, 'datacenters' | 'undeclared'>, tunnels?: ListTunnelsResponse): string {
  let out = table(datacenterRows(list, tunnels));
  if (tunnels && tunnels.paths.length > 0) out += '\n' + table(pathRows(tunnels));
  return out;
}

/** A gRPC failure: INVALID_ARGUMENT is the operator's input (exit 2, naming the flag), the rest exit 1 with the controller's reason. */
function callFailure(err: unknown): Error {
  const e = err as { code?: number; details?: string };
  if (e.code === 3 && typeof e.details === 'string') {
    const field = e.details.slice(0, Math.max(0, e.details.indexOf(': ')));
    return new UsageError(`${flagOfDatacenterField(field)}: ${e.details}`);
  }
  return err as Error;
}

const describeGateways = (d: Datacenter) => d.gateways.map((g) => `${g.host} ${g.wan_endpoint}${g.state === 'active' ? '' : ` (${g.state})`}`).join(', ');

async function gatewayCommand(rest: string[]): Promise<number> {
  const { flags, positional, config } = parse(rest, { ...ADMIN_CLIENT_SPEC, ...DATACENTER_GATEWAY_FLAGS }, { positional: 3, storeFlags: ['--data-dir'] });
  const [action, dc, host] = positional;
  const methods = { add: 'AddGateway', remove: 'RemoveGateway', drain: 'DrainGateway' } as const;
  if (!action || !(action in methods)) throw new UsageError(`gateway: give add, remove or drain (weft datacenter gateway add|remove|drain DC HOST)`);
  if (positional.length !== 3) throw new UsageError(`gateway ${action}: give the datacenter and the host (weft datacenter gateway ${action} DC HOST)`);
  const wan = flags.get('--wan');
  if (wan !== undefined && action !== 'add') throw new UsageError(`--wan: only gateway add sets a WAN endpoint`);
  const request = { datacenter: dc, host, wan_endpoint: typeof wan === 'string' ? wan : '' };
  asUsage(() => checkGatewayRequest(request, { wan: action === 'add' }, []));
  await withAdminClient(flags, config, async (client) => {
    const method = methods[action as keyof typeof methods];
    const { datacenter } = await client.call(method, request).catch((err) => {
      throw callFailure(err);
    });
    const d = datacenter!;
    const done = { add: 'gateway of', remove: 'no longer a gateway of', drain: 'draining in' }[action as keyof typeof methods];
    process.stdout.write(`${host}: ${done} datacenter ${d.name}; gateways: ${describeGateways(d) || 'none'}\n`);
  });
  return 0;
}

export async function datacenterCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = subcommandHelp(argv, DATACENTER_HELP, { anywhere: true });
  if (help !== undefined) return help;
  const label = sub === 'gateway' && rest[0] && !rest[0].startsWith('-') ? `datacenter gateway ${rest[0]}` : `datacenter ${sub}`;
  return guarded(label, async () => {
    if (sub === 'add') {
      const { request, parsed } = datacenterFromFlags(rest);
      await withAdminClient(parsed.flags, parsed.config, async (client) => {
        const { datacenter } = await client.call('CreateDatacenter', request).catch((err) => {
          throw callFailure(err);
        });
        const d = datacenter!;
        process.stdout.write(`added datacenter ${d.name}: gateways ${describeGateways(d)}; WireGuard port ${d.listen_port}${d.mesh ? ', mesh' : ''}\n`);
      });
      return 0;
    }
    if (sub === 'list') {
      const { flags, config } = parse(rest, { ...ADMIN_CLIENT_SPEC, ...DATACENTER_LIST_FLAGS }, { storeFlags: ['--data-dir'] });
      await withAdminClient(flags, config, async (client) => {
        const list = await client.call('ListDatacenters', {});
        // a controller older than ListTunnels (during a rolling upgrade) still lists its datacenters
        const tunnels = await client.call('ListTunnels', {}).catch((err) => {
          if ((err as { code?: number }).code !== GRPC_UNIMPLEMENTED) throw err;
          process.stderr.write('weft datacenter list: the controller does not serve ListTunnels: no tunnel status\n');
          return undefined;
        });
        if (flags.has('--json')) {
          process.stdout.write(JSON.stringify({ datacenters: list.datacenters, undeclared: list.undeclared, ...(tunnels && { tunnels }) }) + '\n');
        } else if (list.datacenters.length === 0 && Object.keys(list.undeclared).length === 0) {
          process.stdout.write('no datacenters (weft datacenter add DC --gateways HOST,HOST)\n');
        } else process.stdout.write(datacenterListText(list, tunnels));
      });
      return 0;
    }
    if (sub === 'delete') {
      const { flags, positional, config } = parse(rest, { ...ADMIN_CLIENT_SPEC, ...DATACENTER_DELETE_FLAGS }, { positional: 1, storeFlags: ['--data-dir'] });
      if (positional.length !== 1) throw new UsageError('give the name of the datacenter to delete (see weft datacenter list)');
      const request = { name: positional[0], force: flags.has('--force') };
      asUsage(() => checkDeleteDatacenter(request));
      return withAdminClient(flags, config, async (client) => {
        const { deleted } = await client.call('DeleteDatacenter', request).catch((err) => {
          throw callFailure(err);
        });
        if (!deleted) {
          process.stderr.write(`weft datacenter delete: no datacenter ${positional[0]}\n`);
          return 1;
        }
        process.stdout.write(`deleted datacenter ${positional[0]}\n`);
        return 0;
      });
    }
    if (sub === 'gateway') return gatewayCommand(rest);
    throw new UsageError(`unknown subcommand "${sub}" (add, list, delete, gateway)`);
  });
}

/** `weft datacenters`: the list. */
export function datacentersCommand(argv: string[]): Promise<number> {
  return datacenterCommand(['list', ...argv]);
}
