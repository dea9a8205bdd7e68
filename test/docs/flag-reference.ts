// The README's reference of every flag and WEFT_* variable, rendered from the
// option tables the commands parse with (flag, variable, file key, value
// form) and the defaults the code falls back to, so neither can drift from
// the code: the daemons' option tables, and each `weft` subcommand's own
// flag table, the one its parse() call reads. What a flag is for is said
// here, once per flag; the unit test fails when a table gains a flag this
// file does not explain, or loses one it does, when a subcommand's table has
// no section, and when README.md's marked section differs from this rendering.
import { readFileSync } from 'node:fs';
import {
  ADMIN_CERT_FLAGS, ADMIN_CLIENT_SPEC, CERT_LIST_FLAGS, CERT_REVOKE_FLAGS, HOST_DELETE_FLAGS, NETWORK_ADD_FLAGS, NETWORK_DELETE_FLAGS,
  NETWORK_LIST_FLAGS, type Spec, specOptions, TOKEN_CREATE_FLAGS, TOKEN_DELETE_FLAGS, TOKEN_LIST_FLAGS,
} from '../../controller/cli/commands';
import { ENDPOINTS_FLAGS, HOSTS_FLAGS, STATUS_FLAGS } from '../../controller/cli/cluster-commands';
import { DATACENTER_ADD_FLAGS, DATACENTER_DELETE_FLAGS, DATACENTER_GATEWAY_FLAGS, DATACENTER_LIST_FLAGS } from '../../controller/cli/datacenter-commands';
import { ROTATE_KEY_FLAGS } from '../../controller/cli/key-commands';
import { SERVICE_CREATE_FLAGS, SERVICE_DELETE_FLAGS, SERVICE_LIST_FLAGS } from '../../controller/cli/service-commands';
import { MAX_HOSTNAMES } from '../../controller/api/validate';
import { TTL_DEFAULT_SECONDS } from '../../controller/pki/tokens';
import { DEFAULT_WG_LISTEN_PORT } from '../../controller/registry/datacenters';
import { DOCTOR_FLAGS } from '../../cni-plugin/agent/doctor/command';
import { EXPLAIN_FLAGS } from '../../cni-plugin/agent/explain/command';
import { CONFIG_ENV, CONFIG_FLAG, type OptionSpec } from '../../controller/common/config-sources';
import { CONTROLLER_OPTIONS, DEFAULTS, STORE_OPTIONS } from '../../controller/daemon/config';
import { AGENT_DEFAULTS, AGENT_OPTIONS } from '../../cni-plugin/agent/config';
import { INSTALL_CNI_OPTIONS, parseInstallCniArgs } from '../../cni-plugin/install-cni';
import { INGRESS_DEFAULTS, INGRESS_OPTIONS } from '../../ingress/config';

export const BEGIN = '<!-- flags:begin -->';
export const END = '<!-- flags:end -->';

/** What a flag is for; `default` only where the code's default is not a plain value (derived, or none). */
type Doc = { meaning: string; default?: string };

export type CommandReference = {
  /** The heading, Markdown. */
  title: string;
  /** Said above the table: the arguments, the flags the command shares with others. */
  note?: string;
  /** A subcommand's own flag table, the object its parse() reads: the test finds every exported table here. */
  table?: Spec;
  options: ReadonlyArray<OptionSpec<string>>;
  /** The code's defaults, keyed like the options. */
  defaults: Readonly<Record<string, unknown>>;
  docs: Readonly<Record<string, Doc>>;
};

const JOIN_DOCS = (tokenCommand: string): Record<string, Doc> => ({
  '--server': { meaning: 'the controller\'s gRPC address', default: 'required' },
  '--token': { meaning: `bootstrap token from \`${tokenCommand}\`, needed until joined; visible in \`ps\`, so prefer --token-file or the variable`, default: 'none' },
  '--token-file': { meaning: 'file holding the bootstrap token, readable only by root', default: 'none' },
  '--ca-cert-hash': { meaning: 'pin of the cluster CA, as `weft token create` prints it (first start)', default: 'none' },
  '--ca-cert': { meaning: 'or the cluster CA certificate itself', default: 'none' },
});

const LOG_LEVEL: Doc = { meaning: 'log level; logs are JSON lines on stdout' };

// The CNI plugin is C (cni-plugin/shim/weft.c) and reads its variables with
// getenv from the runtime's environment: they are listed from its source.
const SHIM_SOURCE = readFileSync(new URL('../../cni-plugin/shim/weft.c', import.meta.url), 'utf8');
/** A number the shim #defines. */
function shimDefine(name: string): string {
  const m = new RegExp(`^#define ${name} (\\d+)$`, 'm').exec(SHIM_SOURCE);
  if (!m) throw new Error(`cni-plugin/shim/weft.c defines no ${name}`);
  return m[1];
}
export const SHIM_VARIABLES = [...SHIM_SOURCE.matchAll(/getenv\("(WEFT_[A-Z0-9_]+)"\)/g)].map((m) => m[1]);

/** A `weft` subcommand's section: its own flags, from the table its parse() reads. */
function subcommand(title: string, table: Spec, note: string, docs: Record<string, Doc>): CommandReference {
  return { title, note, table, options: specOptions(table), defaults: {}, docs };
}

const STORE = 'Also the flags of the commands that open the controller\'s data: `--data-dir`, `--store`, `--config`.';
const ADMIN = 'Also the flags of the commands that call the API as administrator: `--server`, `--ca`, `--cert`, `--key`, `--insecure`, `--data-dir`.';
const AGENT = 'Also every `weft agent` flag, `WEFT_*` variable and `--config` key, read as the agent reads them: the line that starts the agent, with `agent` replaced by this command, looks at that agent (`--server` is required).';
const json = (what: string): Doc => ({ meaning: `${what}, as JSON for scripts instead of the table` });
const REQUIRED = 'required';

const SUBCOMMANDS: CommandReference[] = [
  subcommand('`weft token create`', TOKEN_CREATE_FLAGS, `Prints the line to run on the joining host or ingress. ${STORE}`, {
    '--ttl': { meaning: 'how long the token can join: seconds, or a number with s, m, h or d', default: `\`${TTL_DEFAULT_SECONDS / 3600}h\`` },
    '--description': { meaning: 'a note `weft token list` shows; at most 256 characters, no control characters', default: 'none' },
    '--role': { meaning: '`host`: the token joins hosts (`weft agent`); `ingress`: it joins ingresses (`weft ingress`), which may only read services and status', default: '`host`' },
    '--json': { meaning: 'the token, its expiry, the join command, the server and the CA hash as one JSON object instead of the join line' },
  }),
  subcommand('`weft token list`', TOKEN_LIST_FLAGS, STORE, { '--json': json('the tokens') }),
  subcommand('`weft token delete`', TOKEN_DELETE_FLAGS, `Argument: the token's id, as \`weft token list\` shows it. ${STORE}`, {}),
  subcommand('`weft network list`', NETWORK_LIST_FLAGS, STORE, { '--json': json('the networks') }),
  subcommand('`weft network add`', NETWORK_ADD_FLAGS, `Argument: the new network's name. Running agents lease a subnet in it and create its devices within seconds. ${STORE}`, {
    '--vni': { meaning: 'the network\'s VXLAN network identifier, 1 to 16777215, unique in the cluster', default: REQUIRED },
    '--cidr': { meaning: 'the network\'s address range, IPv4 or IPv6, overlapping no other network', default: REQUIRED },
    '--host-prefix-length': { meaning: 'prefix length of the subnet each host leases from --cidr', default: '`24` for IPv4, `64` for IPv6' },
  }),
  subcommand('`weft network delete`', NETWORK_DELETE_FLAGS, `Argument: the network's name. Releases every host's subnet in it; running agents remove its devices. ${STORE}`, {
    '--force': { meaning: 'delete although containers are attached: their endpoints are removed and the agents take their interfaces away (without it: refused)' },
  }),
  subcommand('`weft hosts` (also `weft host list`)', HOSTS_FLAGS, ADMIN, { '--json': json('one object per host (its record, health, heartbeat age and overlay report)') }),
  subcommand('`weft host delete`', HOST_DELETE_FLAGS, `Argument: the host's name. Removes its record, endpoints and subnet leases and revokes its certificates on every controller. ${STORE}`, {
    '--json': { meaning: 'what was removed (endpoints, leases, revoked serials) as one JSON object instead of a sentence' },
  }),
  subcommand('`weft host rotate-key`', ROTATE_KEY_FLAGS, `Arguments: the hosts whose agents make a new WireGuard key pair, or --all. ${ADMIN}`, {
    '--all': { meaning: 'every registered host, instead of names' },
    '--json': { meaning: 'the hosts and their rotation generation as one JSON object instead of a line each' },
  }),
  subcommand('`weft cert list`', CERT_LIST_FLAGS, `The client certificates issued and not yet expired. ${STORE}`, {
    '--host': { meaning: 'only the certificates of this host', default: 'every host and ingress' },
    '--ingress': { meaning: 'only the certificates of this ingress; not with --host', default: 'every host and ingress' },
    '--revoked': { meaning: 'the revoked certificates still kept, instead of the issued ones' },
    '--json': json('the certificates'),
  }),
  subcommand('`weft cert revoke`', CERT_REVOKE_FLAGS, `Argument: the certificate's serial (\`weft cert list\`). Every controller refuses it from then on. ${STORE}`, {
    '--reason': { meaning: 'kept with the revocation; at most 256 characters, no control characters', default: '`revoked by an operator`' },
    '--json': { meaning: 'the revocation record as one JSON object instead of a sentence' },
  }),
  subcommand('`weft admin-cert`', ADMIN_CERT_FLAGS, 'Also `--data-dir` (the CA it signs with) and `--config`.', {
    '--out': { meaning: 'directory to write `admin.crt`, `admin.key` and `ca.crt` to (mode 0600); refused when they exist', default: REQUIRED },
    '--ttl-days': { meaning: 'the certificate\'s lifetime in days', default: '`30`' },
  }),
  subcommand('`weft status`', STATUS_FLAGS, ADMIN, { '--json': json('the status, hosts per datacenter and rack, and tunnels') }),
  subcommand('`weft endpoints`', ENDPOINTS_FLAGS, ADMIN, {
    '--json': json('the endpoints with whole container ids'),
    '--network': { meaning: 'only the endpoints in this network', default: 'every network' },
    '--host': { meaning: 'only the endpoints on this host', default: 'every host' },
  }),
  subcommand('`weft service create`', SERVICE_CREATE_FLAGS, `Argument: the service's name; a service of that name is replaced. ${ADMIN}`, {
    '--port': { meaning: 'exposed at the ingress; TARGET on the containers (default PORT), protocol default `tcp`; repeatable. `http` ports may be shared by services (routed by --hostname and --path-prefix), a `tcp` or `udp` port belongs to one', default: REQUIRED },
    '--selector': { meaning: 'labels a container\'s endpoint must all carry to be a backend; repeatable or comma-separated', default: REQUIRED },
    '--network': { meaning: 'the network the backends are in', default: '`default`' },
    '--rack-policy': { meaning: '`prefer-local`: traffic stays in the ingress\'s rack until that rack is degraded or busier than the others; `any`: racks are ignored', default: '`prefer-local`' },
    '--affinity': { meaning: '`client-ip`: a client always reaches the same backend (Maglev); `none`: each connection is balanced', default: '`none`' },
    '--hostname': { meaning: `\`http\` ports: route by Host header, a name or a wildcard such as \`*.example.com\`; repeatable, at most ${MAX_HOSTNAMES}`, default: 'any host name' },
    '--path-prefix': { meaning: '`http` ports: route the requests whose path starts with it', default: '`/`' },
    '--health-path': { meaning: 'HTTP health check of each backend at this path', default: 'a TCP connect' },
    '--proxy-protocol': { meaning: 'send a PROXY protocol v2 header to the backends, so they see the client\'s address' },
  }),
  subcommand('`weft service list` (also `weft services`)', SERVICE_LIST_FLAGS, ADMIN, { '--json': json('the services, each with its backends') }),
  subcommand('`weft service delete`', SERVICE_DELETE_FLAGS, `Argument: the service's name. ${ADMIN}`, {}),
  subcommand('`weft datacenter add`', DATACENTER_ADD_FLAGS, `Argument: the datacenter's name, as the agents' \`--datacenter\`. Public keys are never given: each host registers its own. ${ADMIN}`, {
    '--gateways': { meaning: 'the hosts that carry the datacenter\'s traffic to the others: registered hosts whose agent runs with `--datacenter` naming it; at least two unless --allow-single-gateway; repeatable or comma-separated', default: REQUIRED },
    '--wan': { meaning: 'where the other datacenters reach a gateway (IPv6 as `[ADDR]:PORT`); repeatable or comma-separated', default: 'the host\'s underlay address and --listen-port' },
    '--listen-port': { meaning: 'WireGuard UDP port on the gateways', default: `\`${DEFAULT_WG_LISTEN_PORT}\`` },
    '--mtu': { meaning: 'MTU of the tunnels between datacenters', default: 'derived from the underlay' },
    '--mesh': { meaning: 'encrypt host-to-host traffic inside the datacenter too (recorded, not acted on yet)' },
    '--allow-single-gateway': { meaning: 'accept one gateway: no failover, and it cannot be drained' },
  }),
  subcommand('`weft datacenter list` (also `weft datacenters`)', DATACENTER_LIST_FLAGS, ADMIN, { '--json': json('the datacenters, the ones hosts name without a record, and the tunnels') }),
  subcommand('`weft datacenter delete`', DATACENTER_DELETE_FLAGS, `Argument: the datacenter's name. ${ADMIN}`, {
    '--force': { meaning: 'delete although registered hosts are in it (without it: refused)' },
  }),
  subcommand('`weft datacenter gateway add|drain|remove`', DATACENTER_GATEWAY_FLAGS, `Arguments: the action, the datacenter, the host. \`add\` makes the host a gateway or updates it (and activates it again after a drain); \`drain\`: it takes no new peers and the others carry its traffic (the last active gateway cannot drain). ${ADMIN}`, {
    '--wan': { meaning: '`add` only: where the other datacenters reach this gateway (IPv6 as `[ADDR]:PORT`)', default: 'the host\'s underlay address and the datacenter\'s port' },
  }),
  subcommand('`weft doctor`', DOCTOR_FLAGS, `Checks this host as root and prints PASS, WARN or FAIL per finding; exit 0 when nothing failed, 1 when something did, 2 on a bad flag. ${AGENT}`, {
    '--json': { meaning: 'the findings as one JSON document instead of a line each' },
    '--metrics': { meaning: 'where the agent serves `/metrics`, `/healthz`, `/readyz`: the agent\'s --metrics-listen under another name', default: `\`${AGENT_DEFAULTS.metricsListen}\`` },
  }),
  subcommand('`weft explain`', EXPLAIN_FLAGS, `Arguments: two container addresses, \`<src-ip> <dst-ip>\`; run as root on the host holding either. Exit 0 when the path is complete, 1 when it breaks, 2 on a bad flag. ${AGENT}`, {
    '--size': { meaning: 'IP packet size checked against every MTU on the path (`ping -s N` sends N+28)', default: 'no size check' },
    '--json': { meaning: 'the hops as one JSON document instead of numbered lines' },
    '--cert': { meaning: 'an admin certificate (`weft admin-cert`), with --key and --ca: adds each remote host\'s health and its agent\'s report', default: 'this host\'s own, from the agent\'s state dir' },
    '--key': { meaning: 'its key', default: 'as --cert' },
    '--ca': { meaning: 'the cluster CA certificate', default: 'as --cert' },
  }),
];

export const REFERENCE: CommandReference[] = [
  {
    title: '`weft controller`',
    options: CONTROLLER_OPTIONS,
    defaults: DEFAULTS,
    docs: {
      '--listen': { meaning: 'gRPC API, mTLS' },
      '--metrics-listen': { meaning: '`/metrics`, `/healthz`, `/readyz`, `/topology` over plain HTTP' },
      '--data-dir': { meaning: 'the cluster CA, the serving certificate, `join.json` and the SQLite store' },
      '--store': { meaning: 'the store: SQLite file, or etcd endpoints for several controllers', default: 'sqlite:DATA_DIR/weft.db' },
      '--advertise': { meaning: 'names hosts reach the controller by (DNS, NAT, load balancer): in its certificate, the first in the join command', default: 'none' },
      '--log-level': LOG_LEVEL,
      '--insecure': { meaning: 'plaintext gRPC on a loopback address, for local testing only' },
      '--client-cert-ttl': { meaning: 'lifetime of host and ingress certificates; clients renew at half of it' },
      '--cert-renew-grace': { meaning: 'how long after expiry a certificate\'s key may still renew it (a host that was down)' },
      '--join-rate': { meaning: 'Join attempts per second per client address' },
      '--join-burst': { meaning: 'Join attempts in a burst per client address' },
    },
  },
  {
    title: '`weft agent`',
    options: AGENT_OPTIONS,
    defaults: AGENT_DEFAULTS,
    docs: {
      ...JOIN_DOCS('weft token create'),
      '--host-name': { meaning: 'this host\'s name in the cluster', default: 'the machine\'s hostname' },
      '--underlay-ip': { meaning: 'the address other hosts reach this one at', default: 'source address of the route to the controller' },
      '--rack': { meaning: 'this host\'s rack', default: 'none' },
      '--datacenter': { meaning: 'this host\'s datacenter', default: 'none' },
      '--networks': { meaning: 'the weft networks this host joins', default: 'every network' },
      '--state-dir': { meaning: 'credentials and the agent\'s database' },
      '--cni-socket': { meaning: 'where the CNI plugin reaches the agent (as `weft install-cni --socket`)' },
      '--metrics-listen': { meaning: '`/metrics`, `/healthz`, `/readyz` over plain HTTP' },
      '--mtu': { meaning: 'overlay MTU', default: 'underlay MTU − 50' },
      '--vtep-mac': { meaning: 'MAC of this host\'s VXLAN devices', default: 'derived from the host name' },
      '--resync-interval': { meaning: 'full check of devices, iptables and the overlay against drift' },
      '--gc-interval': { meaning: 'release addresses and host ends of containers gone without a DEL' },
      '--vxlan-tx-checksum': { meaning: 'TX checksum offload on weft\'s VXLAN devices' },
      '--tunnel-probe-port': { meaning: 'UDP port of the probes between datacenters\' paths' },
      '--tunnel-probe-interval': { meaning: 'how often each remote datacenter\'s path is probed' },
      '--wg-key-rotation': { meaning: 'how often this host makes a new WireGuard key pair (a gateway drains itself first); `0`: only on `weft host rotate-key`' },
      '--log-level': LOG_LEVEL,
    },
  },
  {
    title: '`weft install-cni`',
    options: INSTALL_CNI_OPTIONS,
    defaults: parseInstallCniArgs([], {}),
    docs: {
      '--bin-dir': { meaning: 'where runtimes find CNI plugins; the plugin goes there as `weft`' },
      '--conf-dir': { meaning: 'where runtimes find network configs; writes `<priority>-<name>.conflist`' },
      '--network': { meaning: 'the weft network the containers join' },
      '--name': { meaning: 'the CNI network name runtimes select (`--network weft`)' },
      '--cni-version': { meaning: 'the conflist\'s cniVersion' },
      '--socket': { meaning: 'the agent\'s socket (as `weft agent --cni-socket`)' },
      '--with-portmap': { meaning: 'chain the reference portmap plugin (in --bin-dir or /usr/lib/cni)' },
      '--source': { meaning: 'the plugin binary to install', default: 'dist/weft-cni beside the weft command' },
      '--priority': { meaning: 'the file name\'s prefix; runtimes that take the first config use the lowest as their default' },
      '--default': { meaning: 'allow sorting before another weft network\'s config (make this network the default)' },
    },
  },
  {
    title: 'The CNI plugin (`/opt/cni/bin/weft`; set in the container runtime\'s environment)',
    options: SHIM_VARIABLES.map((env) => ({ key: env, flag: '', env, kind: 'string' as const, form: 'a whole number of milliseconds above 0' })),
    defaults: {},
    docs: {
      WEFT_CNI_TIMEOUT_MS: { meaning: 'how long the plugin waits for the agent\'s reply before it fails with "try again later"', default: `\`${shimDefine('REPLY_TIMEOUT_MS')}\`` },
    },
  },
  {
    title: '`weft ingress`',
    options: INGRESS_OPTIONS,
    defaults: INGRESS_DEFAULTS,
    docs: {
      ...JOIN_DOCS('weft token create --role ingress'),
      '--name': { meaning: 'this ingress\'s name in the cluster', default: 'the machine\'s hostname' },
      '--rack': { meaning: 'this ingress\'s rack: backends in it are preferred', default: 'none' },
      '--datacenter': { meaning: 'this ingress\'s datacenter', default: 'none' },
      '--state-dir': { meaning: 'credentials, saved services, the takeover socket' },
      '--listen-address': { meaning: 'the address HTTP listeners bind and L4 rules match', default: 'every address' },
      '--metrics-listen': { meaning: '`/metrics`, `/healthz`, `/readyz` over plain HTTP' },
      '--accept-proxy-from': { meaning: 'peers whose PROXY protocol header is believed', default: 'none' },
      '--max-connections': { meaning: 'client connections over all listeners' },
      '--max-header-bytes': { meaning: 'request line plus headers; larger gets 431' },
      '--header-timeout': { meaning: 'to receive the request headers; then 408' },
      '--idle-timeout': { meaning: 'idle keep-alive client connections are closed after it' },
      '--connect-timeout': { meaning: 'to connect to a backend; then the next one or 504' },
      '--upstream-timeout': { meaning: 'for a backend\'s response, and the longest silence in it' },
      '--drain-timeout': { meaning: 'how long removed backends, unused ports and a stopping ingress finish requests' },
      '--l4-source-nat': { meaning: 'source address of L4 traffic to backends' },
      '--nft-table': { meaning: 'the nftables table of the L4 rules' },
      '--access-log-sample': { meaning: 'fraction of requests written to the access log' },
      '--takeover': { meaning: 'take the listening sockets over from the ingress running with this state dir (upgrade without refusing a connection)' },
      '--log-level': LOG_LEVEL,
    },
  },
  {
    title: 'Commands that open the controller\'s data (`weft token`, `network`, `host delete`, `cert`, `admin-cert`)',
    options: STORE_OPTIONS,
    defaults: DEFAULTS,
    docs: {
      '--data-dir': { meaning: 'the controller\'s data dir', default: `./.weft-data when the current directory has one (npm start), else ${DEFAULTS.dataDir}` },
      '--store': { meaning: 'the controller\'s store', default: 'sqlite:DATA_DIR/weft.db' },
    },
  },
  {
    title: 'Commands that call the API as administrator (`weft status`, `hosts`, `endpoints`, `service`, `datacenter`, ...; they take `--data-dir` too)',
    options: specOptions(ADMIN_CLIENT_SPEC),
    defaults: {},
    docs: {
      '--server': { meaning: 'the controller\'s gRPC address', default: `127.0.0.1:${DEFAULTS.listen.split(':')[1]}` },
      '--ca': { meaning: 'the cluster CA certificate', default: 'ca.crt in the data dir' },
      '--cert': { meaning: 'an admin certificate (`weft admin-cert`)', default: 'one made in memory from the CA in the data dir' },
      '--key': { meaning: 'its key', default: 'as --cert' },
      '--insecure': { meaning: 'plaintext gRPC to a controller started with --insecure' },
    },
  },
  ...SUBCOMMANDS,
];

/** --metrics-listen -> metricsListen: the file key a flag has unless its table says otherwise. */
const camel = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** A table cell: pipes escaped, and outside code spans, < and > too (GitHub would take <name> for a tag). */
const cell = (s: string) =>
  s.replace(/\|/g, '\\|').split('`').map((part, i) => (i % 2 === 1 ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;'))).join('`');

/** What a row is known by: its flag, or for a variable without one, the variable. */
export const nameOf = (o: OptionSpec<string>) => o.flag || o.env;

function defaultOf(c: CommandReference, o: OptionSpec<string>): string {
  const doc = c.docs[nameOf(o)];
  if (doc?.default !== undefined) return doc.default;
  const v = c.defaults[o.key];
  if (v !== undefined && v !== '') return `\`${String(v)}\``;
  return o.kind === 'bool' ? '`false`' : 'none';
}

export function renderFlagReference(reference: readonly CommandReference[] = REFERENCE): string {
  const out: string[] = [
    '## Flags and variables',
    '',
    'Generated from the option tables in the code by `npm run gen:flags`; a',
    'unit test fails when this section is stale. Sources, strongest first:',
    `flags, \`WEFT_*\` variables, then the JSON file named by \`${CONFIG_FLAG} FILE\``,
    `(or \`${CONFIG_ENV}\`), whose keys are the flags' names in camelCase`,
    '(`--metrics-listen` is `metricsListen`; another key is named in the flag',
    'column). An empty variable counts as unset. A bad value stops the command',
    'with exit code 2, naming the flag, variable or key and the form it takes.',
    'After the daemons come the `weft` subcommands: their own flags are read',
    'from the command line only (no variable, no file key), beside the shared',
    'ones they take.',
  ];
  for (const c of reference) {
    out.push('', `### ${c.title}`, '');
    if (c.note) out.push(c.note, '');
    if (c.options.length === 0) {
      out.push('No flags of its own.');
      continue;
    }
    const env = c.options.some((o) => o.env !== '');
    const flag = c.options.some((o) => o.flag !== '');
    const head = [...(flag ? ['flag'] : []), ...(env ? ['variable'] : []), 'default', 'value', 'meaning'];
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---|').join('')}`);
    for (const o of c.options) {
      const key = o.key !== camel(o.flag) && env && flag ? ` (file: \`${o.key}\`)` : '';
      const row = [...(flag ? [`\`${o.flag}\`${key}`] : []), ...(env ? [`\`${o.env}\``] : []), defaultOf(c, o), o.form, c.docs[nameOf(o)]?.meaning ?? ''];
      out.push(`| ${row.map(cell).join(' | ')} |`);
    }
  }
  // A blank line before the end marker: a table runs on until one.
  return out.join('\n') + '\n\n';
}

/** README.md with its marked section replaced by `section`; throws when the markers are missing. */
export function withFlagReference(readme: string, section: string): string {
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b < 0 || e < b) throw new Error(`README.md has no ${BEGIN} ... ${END} section for the flag reference`);
  return `${readme.slice(0, b + BEGIN.length)}\n${section}${readme.slice(e)}`;
}

/** The text between the markers, or undefined without them. */
export function flagReferenceIn(readme: string): string | undefined {
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b < 0 || e < b) return undefined;
  return readme.slice(b + BEGIN.length + 1, e);
}
