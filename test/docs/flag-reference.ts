// The README's reference of every flag and WEFT_* variable, rendered from the
// option tables the commands parse with (flag, variable, file key, value
// form) and the defaults the code falls back to, so neither can drift from
// the code. What a flag is for is said here, once per flag; the unit test
// fails when a table gains a flag this file does not explain, or loses one
// it does, and when README.md's marked section differs from this rendering.
import { readFileSync } from 'node:fs';
import { ADMIN_CLIENT_SPEC } from '../../controller/cli/commands';
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
    options: Object.entries(ADMIN_CLIENT_SPEC).map(([flag, form]) => ({
      key: flag, flag, env: '', kind: form === 'bool' ? ('bool' as const) : ('string' as const), form: form === 'bool' ? 'true or false' : String(form),
    })),
    defaults: {},
    docs: {
      '--server': { meaning: 'the controller\'s gRPC address', default: `127.0.0.1:${DEFAULTS.listen.split(':')[1]}` },
      '--ca': { meaning: 'the cluster CA certificate', default: 'ca.crt in the data dir' },
      '--cert': { meaning: 'an admin certificate (`weft admin-cert`)', default: 'one made in memory from the CA in the data dir' },
      '--key': { meaning: 'its key', default: 'as --cert' },
      '--insecure': { meaning: 'plaintext gRPC to a controller started with --insecure' },
    },
  },
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
    'Each subcommand\'s own flags (`weft token create --ttl`, `weft service',
    'create --port`, ...) are in its `--help`.',
  ];
  for (const c of reference) {
    out.push('', `### ${c.title}`, '');
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
