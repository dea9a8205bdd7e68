// `weft explain <src-ip> <dst-ip>`: the path a packet takes between two
// container addresses, hop by hop, and where it would be dropped and why.
//
// Run as root on a host, with the agent's flags as doctor takes them. It
// reads this host's kernel for every hop here: the container holding src
// (agent DB, then its namespace), its veth, the bridge, the host's route as
// forwarding looks it up, the neighbour and FDB entry on the VXLAN device,
// the underlay route. It cannot read another host's kernel, so the remote
// host and container come from the controller: its topology and endpoints,
// and with an admin certificate that host's health and the overlay summary
// its agent last reported, each hop naming its source. Run where dst lives
// (`weft explain <src> <dst>` there), it explains the receiving side from
// that host's kernel instead: one command, the side it can see. Between
// datacenters, run on a gateway (of either side) it reads the tunnel's leg
// there: weft.xdc, the route into weft.wg0 and the WireGuard peer. With
// <client-ip> <address>:<port>[/proto] on the ingress host, it follows an
// outside client's packet through the ingress (L4 DNAT or L7 proxy) onwards.
import { loadCommandConfig } from '../../../controller/common/command';
import { AGENT_DEFAULTS, loadAgentConfig } from '../config';

const HELP = `usage: weft explain <src-ip> <dst-ip> [--size BYTES] [--json] [--cert FILE --key FILE --ca FILE] [the agent's flags]
       weft explain <client-ip> <address>:<port>[/tcp|udp] [...]   (on the ingress host: through its L4 service)

The path a packet from container address <src-ip> to <dst-ip> takes, hop by hop:
container, veth, bridge, the host's route, VXLAN (neighbour and FDB entry), the
underlay, the remote host and the container there; at each hop whether and why
it would be dropped (no route or the wrong device, a missing neighbour or FDB
entry, weft's network isolation, an MTU below --size, the fail-closed table for
another datacenter, an unhealthy host), with the fix.

Run it as root on the host that holds <src-ip>: hops here are read from the
kernel; the remote host's come from the controller (and, with an admin
certificate, from what its agent last reported). Run on the host that holds
<dst-ip>, it reads the receiving side from that host's kernel. Between
datacenters, run on a gateway the path crosses, it reads the tunnel there:
the route into weft.xdc, its FDB entry to the remote gateway, the route into
weft.wg0 and the WireGuard peer (no handshake in 180 s is a break). With
<address>:<port>, run on the ingress host: the outside client's packet through
the ingress's L4 DNAT (nftables table ip weft-ingress) to a backend, or for an
http port the L7 proxy listening there and the service's backends (from the
controller), and on to one backend's container.
Exit status: 0 when the path is complete, 1 when it breaks, 2 on a bad flag.

  --size BYTES                IP packet size to check against every MTU on the way
  --json                      one JSON document instead of the numbered hops
  --cert, --key, --ca FILE    an admin certificate (weft admin-cert): adds each host's health and report;
                              default: this host's own certificate from the agent's state dir
  --server host:port          the controller, as the agent has it (required)
  --state-dir DIR             the agent's state dir: credentials and agent DB (default ${AGENT_DEFAULTS.stateDir})
  --host-name, --config, ...  every other agent flag, read as the agent reads it (weft agent --help)
`;

/**
 * The explain's own flags and the form of each value ('bool': none), shaped
 * like the other weft subcommands' tables; every other flag is the agent's.
 * The flag reference (test/docs) is rendered from this table, and its test
 * fails when splitExplainArgs takes a flag the table does not list.
 */
export const EXPLAIN_FLAGS: Readonly<Record<string, string>> = {
  '--size': 'a packet size in bytes (28..65535)',
  '--json': 'bool',
  '--cert': 'a PEM file',
  '--key': 'a PEM file',
  '--ca': 'a PEM file',
};

export type ExplainArgs = {
  src?: string; dst?: string; size?: number; json: boolean; admin: Partial<Record<'cert' | 'key' | 'ca', string>>; agentArgv: string[]; error?: string;
  /** dst given as ADDRESS:PORT[/tcp|udp]: an outside client to the ingress's L4 service on this host. */
  service?: { port: number; protocol: 'tcp' | 'udp' };
};

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
/** An ingress service as the client reaches it: IPv4 address, port, protocol (default tcp). */
const SERVICE = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})(?:\/(tcp|udp))?$/;
const isIp = (s: string) => (IPV4.test(s) && s.split('.').every((o) => Number(o) <= 255)) || (/^[0-9a-fA-F:]+$/.test(s) && s.includes(':'));

/** The explain's own flags and its two addresses; the rest is the agent's. */
export function splitExplainArgs(argv: readonly string[]): ExplainArgs {
  const out: ExplainArgs = { json: false, admin: {}, agentArgv: [] };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--json') out.json = true;
    else if (flag === '--size') {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 28 || n > 65535) out.error ??= `--size: ${JSON.stringify(v)} is not a packet size in bytes (28..65535)`;
      else out.size = n;
    } else if (flag === '--cert' || flag === '--key' || flag === '--ca') out.admin[flag.slice(2) as 'cert' | 'key' | 'ca'] = value();
    else if (!a.startsWith('-') && positional.length < 2 && isIp(a)) positional.push(a);
    else if (!a.startsWith('-') && positional.length === 1 && SERVICE.test(a)) {
      const [, ip, port, proto] = SERVICE.exec(a)!;
      if (!isIp(ip) || Number(port) < 1 || Number(port) > 65535) out.error ??= `${JSON.stringify(a)} is not ADDRESS:PORT[/tcp|udp]`;
      positional.push(ip);
      out.service = { port: Number(port), protocol: (proto ?? 'tcp') as 'tcp' | 'udp' };
    }
    else out.agentArgv.push(a);
  }
  [out.src, out.dst] = positional;
  if (positional.length < 2) out.error ??= 'give two container addresses: weft explain <src-ip> <dst-ip> (or a client and a service: <client-ip> <address>:<port>[/tcp|udp])';
  const n = Object.keys(out.admin).length;
  if (n > 0 && n < 3) out.error ??= '--cert, --key and --ca go together';
  return out;
}

export async function explainCommand(argv: string[]): Promise<number> {
  const args = splitExplainArgs(argv);
  if (args.error && !argv.includes('--help') && !argv.includes('-h')) {
    process.stderr.write(`weft explain: ${args.error}\n\n${HELP}`);
    return 2;
  }
  const loaded = loadCommandConfig('explain', args.agentArgv, HELP, () => loadAgentConfig(args.agentArgv, process.env));
  if ('exit' in loaded) return loaded.exit;
  // netlink, SQLite and gRPC load only once the flags are good
  const { runExplain } = await import('./run');
  const { exitCodeOf, renderJson, renderText } = await import('./render');
  const e = await runExplain(loaded.config, {
    src: args.src!, dst: args.dst!, ...(args.size !== undefined ? { size: args.size } : {}),
    ...(args.admin.cert ? { admin: { cert: args.admin.cert, key: args.admin.key!, ca: args.admin.ca! } } : {}),
    ...(args.service ? { ingress: args.service } : {}),
  });
  process.stdout.write(args.json ? renderJson(e) : renderText(e));
  return exitCodeOf(e);
}
