// The controller-side `weft` subcommands: the daemon itself, bootstrap
// tokens, admin certificates, deleting a host (services are in
// service-commands.ts; status, hosts and endpoints in cluster-commands.ts; on
// the helpers exported here). Every bad flag is reported by name with exit
// code 2 before anything is created or opened.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
// gRPC, the proto loader, pino and the PKI (x509) are imported where a
// command needs them, so --help, a bad flag and `weft token list` do not load them.
import type * as grpc from '@grpc/grpc-js';
import type { ControllerClient } from '../api/client/client';
import { ADMIN_NAME, ROLES, type Role } from '../api/validate';
import { loadCommandConfig, shutdownSignal, stopOnSignal } from '../common/command';
import { parseFlags, type OptionSpec } from '../common/config-sources';
import { WeftError } from '../common/errors';
import { weftVersion } from '../common/version';
import { ConfigError, type ControllerConfig, DEFAULTS, loadControllerConfig, STORE_OPTIONS } from '../daemon/config';
import { advertisedServer } from '../daemon/advertise';
import { JOIN_FILE, joinCommand, readJoinInfo } from '../daemon/join-info';
import type { Ca } from '../pki';
import { openStore, parseStoreUrl } from '../store/index';
import { createToken, deleteToken, listTokens } from '../pki/tokens';
import { readClusterConfig, updateClusterConfig } from '../ipam/cluster-config';
import { ClusterConfigError, UnknownNetworkError } from '../ipam/errors';
import { deleteNetwork } from '../service/network-removal';

export class UsageError extends WeftError {
  constructor(message: string) {
    super('WEFT_USAGE', message);
    this.name = 'UsageError';
  }
}

/**
 * A subcommand's own flags: 'bool', for a flag that takes a value the form
 * of that value (said when it is missing), or { list: form } for one that may
 * be repeated or take a comma-separated list.
 */
export type Spec = Record<string, string | { list: string }>;
export type Parsed = { flags: Map<string, string | true>; lists: Map<string, string[]>; positional: string[]; config: ControllerConfig };

/**
 * The subcommand's flags and up to `positional` arguments, read by the one
 * flag parser every weft command uses. The flags that find the controller's
 * data (--data-dir, --store unless `storeFlags` leaves it out, --config) go on
 * to loadControllerConfig, which reads them with WEFT_* and the config file
 * exactly as weft controller does.
 */
export function parse(argv: readonly string[], spec: Spec, opts: { positional?: number; storeFlags?: string[] } = {}): Parsed {
  const store = STORE_OPTIONS.filter((o) => (opts.storeFlags ?? ['--data-dir', '--store']).includes(o.flag));
  const own = specOptions(spec);
  const { values, configPath, positional } = parseFlags<string>([...own, ...store], argv, opts.positional ?? 0);
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  for (const o of own) {
    const v = values.get(o.key)?.value;
    if (Array.isArray(v)) lists.set(o.flag, v);
    else if (v !== undefined && v !== false) flags.set(o.flag, v as string | true);
  }
  const pass = store.flatMap((o) => (values.has(o.key) ? [`${o.flag}=${values.get(o.key)!.value as string}`] : []));
  if (configPath) pass.push(`--config=${configPath.value}`);
  return { flags, lists, positional, config: loadControllerConfig(pass, process.env, undefined, localDataDir()) };
}

/** A subcommand's flag table as the option table parseFlags reads (flags only: no variable, no file key). */
export function specOptions(spec: Spec): Array<OptionSpec<string>> {
  return Object.entries(spec).map(([flag, form]) =>
    typeof form === 'object'
      ? { key: flag, flag, env: '', kind: 'list', form: form.list }
      : form === 'bool' ? { key: flag, flag, env: '', kind: 'bool', form: 'true or false' } : { key: flag, flag, env: '', kind: 'string', form },
  );
}

/** `--json` of the commands that print for scripts too. */
export const JSON_FLAG: Spec = { '--json': 'bool' };

/** Where `npm start` keeps the controller's data, relative to the clone it runs from. */
export const LOCAL_DATA_DIR = '.weft-data';

const STORE_FLAGS_HELP =
  '  store flags (as for weft controller): --data-dir DIR, --store URL, --config FILE\n' +
  `  default data dir: ./${LOCAL_DATA_DIR} when the current directory has one (npm start), else ${DEFAULTS.dataDir}`;

/**
 * The data dir a command uses when no flag, WEFT_DATA_DIR or config file names
 * one: ./.weft-data when the current directory has it (the controller that
 * `npm start` runs from a clone), else the system default. Like git finding
 * .git, this lets `weft token create` in the clone find that controller.
 */
function localDataDir(): string {
  try {
    if (statSync(LOCAL_DATA_DIR).isDirectory()) return LOCAL_DATA_DIR;
  } catch {
    // no local data: the system default
  }
  return DEFAULTS.dataDir;
}

/**
 * The usage of a command with subcommands, when no subcommand or help is
 * asked for (exit 2 and 0); with `anywhere`, also for --help after the
 * subcommand. Undefined: go on with the subcommand.
 */
export function subcommandHelp(argv: readonly string[], help: string, opts: { anywhere?: boolean } = {}): number | undefined {
  const [sub, ...rest] = argv;
  const asked = !sub || sub === '--help' || sub === '-h' || sub === 'help' || (opts.anywhere && (rest.includes('--help') || rest.includes('-h')));
  if (!asked) return undefined;
  process.stdout.write(help);
  return sub ? 0 : 2;
}

/** Runs a subcommand body, mapping usage mistakes to exit 2 and failures to exit 1, each with one clear line. */
export async function guarded(cmd: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    const usage = err instanceof UsageError || err instanceof ConfigError;
    process.stderr.write(`weft ${cmd}: ${(err as Error).message}\n`);
    return usage ? 2 : 1;
  }
}

// ---- weft controller --------------------------------------------------------

const CONTROLLER_HELP = `usage: weft controller [flags]

  --listen host:port          gRPC API (default ${DEFAULTS.listen}, mTLS)
  --metrics-listen host:port  /metrics /healthz /readyz (default ${DEFAULTS.metricsListen})
  --data-dir DIR              CA, serving certificate, SQLite store (default ${DEFAULTS.dataDir})
  --store URL                 sqlite:PATH (default DIR/weft.db) or etcd:http://host:port[,...]
  --advertise NAMES           extra names hosts use to reach this controller (DNS or IP, comma-separated)
  --log-level LEVEL           fatal|error|warn|info|debug|trace|silent (default info)
  --insecure                  plaintext gRPC on loopback, for local testing only
  --client-cert-ttl DURATION  lifetime of host and ingress certificates (default ${DEFAULTS.clientCertTtl}); clients renew at half of it
  --cert-renew-grace DURATION how long after expiry a certificate's key may still renew it (default ${DEFAULTS.certRenewGrace})
  --join-rate N, --join-burst N  Join attempts per second and in a burst, per client address (default ${DEFAULTS.joinRate}, ${DEFAULTS.joinBurst})
  --config FILE               JSON file with the same settings (keys listen, metricsListen, ...)
Every flag also reads from WEFT_<NAME> (WEFT_LISTEN, WEFT_DATA_DIR, ...).
`;

export async function controllerCommand(argv: string[]): Promise<number> {
  const loaded = loadCommandConfig('controller', argv, CONTROLLER_HELP, () => loadControllerConfig(argv, process.env));
  if ('exit' in loaded) return loaded.exit;
  const config = loaded.config;
  const { createLogger } = await import('../common/log');
  const log = createLogger({ level: config.logLevel });
  const signal = shutdownSignal(log);

  // The daemon (API, metrics, election, watch hubs) is loaded only once the flags are good, as for the agent.
  const { startController } = await import('../daemon/main');
  let running;
  try {
    running = await startController(config, { logger: log, version: weftVersion() });
  } catch (err) {
    log.fatal({ err }, 'cannot start the controller');
    process.stderr.write(`weft controller: ${(err as Error).message}\n`);
    return 1;
  }
  return stopOnSignal(log, await signal, () => running.stop());
}

/** Rows as columns two spaces apart, each as wide as its widest cell. */
export function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd()).join('\n') + '\n';
}

// ---- weft token -------------------------------------------------------------

const TOKEN_HELP = `usage: weft token create [--role host|ingress] [--ttl 1h] [--description TEXT] [--json]
       weft token list [--json]
       weft token delete <id>
${STORE_FLAGS_HELP}
  --ttl takes seconds or a duration: 90s, 30m, 1h, 2d (1m .. 7d, default 1h)
  --role host (default): the token joins hosts; create prints the command to run on a host, one line:
    weft agent --server ADDR:PORT --token ID.SECRET --ca-cert-hash sha256:HEX
  --role ingress: the token joins ingresses, which may only read services and status:
    weft ingress --server ADDR:PORT --token ID.SECRET --ca-cert-hash sha256:HEX
  (--json: the token's fields plus joinCommand, server, caCertHash)
`;

export const TOKEN_CREATE_FLAGS: Spec = { '--ttl': 'a duration such as 1h (1m .. 7d)', '--description': 'text', '--role': 'host or ingress', ...JSON_FLAG };
export const TOKEN_LIST_FLAGS: Spec = { ...JSON_FLAG };
export const TOKEN_DELETE_FLAGS: Spec = {};

/** The join line for a token of `role`: the agent's from the daemon's join info, the ingress's with the same fields. */
export function roleJoinCommand(role: Role, server: string, token: string, caCertHash: string): string {
  return role === 'ingress' ? `weft ingress --server ${server} --token ${token} --ca-cert-hash ${caCertHash}` : joinCommand(server, token, caCertHash);
}

/** "90s", "30m", "1h", "2d" or a bare number of seconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a duration (e.g. 90s, 30m, 1h, 2d)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

/** The token commands act on the store directly; for SQLite they refuse to create a new, empty database by mistake. */
async function openExistingStore(config: ControllerConfig) {
  const loc = parseStoreUrl(config.storeUrl);
  if (loc.kind === 'sqlite' && !existsSync(loc.path)) {
    throw new Error(`no store at ${loc.path}: start the controller first, or point at its data with --data-dir or --store`);
  }
  return openStore(config.storeUrl);
}

/**
 * The server and CA pin for the join command: as the controller recorded them
 * at its last start in this data dir, else worked out here by the same rule
 * (the CA hash from ca.crt, the address from --advertise, the listen address
 * or this machine's interfaces). `note` tells the operator what to check.
 */
async function joinAddress(config: ControllerConfig): Promise<{ server: string; caCertHash: string; note?: string }> {
  const recorded = await readJoinInfo(config.dataDir);
  if (recorded) {
    return {
      server: recorded.server, caCertHash: recorded.caCertHash,
      ...(recorded.tls ? {} : { note: 'warning: the controller runs with --insecure (no TLS); agents cannot join it' }),
    };
  }
  const { CA_CERT_FILE, caCertHash } = await import('../pki');
  const caPath = join(config.dataDir, CA_CERT_FILE);
  let caPem: string;
  try {
    caPem = readFileSync(caPath, 'utf8');
  } catch {
    throw new Error(
      `no ${caPath}: the join command needs the cluster CA's hash, and no controller has started with data dir ${config.dataDir}; ` +
        'start it there first, or point --data-dir at the data dir of a controller of this cluster',
    );
  }
  const advertised = advertisedServer(config, config.listen.port);
  return {
    server: advertised.server, caCertHash: caCertHash(caPem),
    note: `no ${JOIN_FILE} in ${config.dataDir} (the controller writes it at start): --server is ${advertised.server}, ${advertised.source}; check that hosts reach the controller there`,
  };
}

export async function tokenCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = subcommandHelp(argv, TOKEN_HELP);
  if (help !== undefined) return help;
  return guarded(`token ${sub}`, async () => {
    if (sub === 'create') {
      const { flags, config } = parse(rest, TOKEN_CREATE_FLAGS);
      const role = (flags.get('--role') as string | undefined) ?? 'host';
      if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role: ${JSON.stringify(role)} is not a role (${ROLES.join(' or ')})`);
      const ttlSeconds = flags.has('--ttl') ? parseDuration('--ttl', flags.get('--ttl') as string) : undefined;
      if (ttlSeconds !== undefined && (ttlSeconds < 60 || ttlSeconds > 7 * 86400)) {
        throw new UsageError(`--ttl: ${flags.get('--ttl')} is out of range (1m .. 7d)`);
      }
      const store = await openExistingStore(config);
      try {
        // Where hosts reach the controller, before a token exists: nothing is created when the join command cannot be printed.
        const how = await joinAddress(config);
        const t = await createToken(store, { ttlSeconds, description: flags.get('--description') as string | undefined, role: role as Role });
        const command = roleJoinCommand(role as Role, how.server, t.token, how.caCertHash);
        if (flags.has('--json')) {
          process.stdout.write(JSON.stringify({ ...t, joinCommand: command, server: how.server, caCertHash: how.caCertHash }) + '\n');
        } else {
          process.stdout.write(`${command}\n`);
          const what = role === 'ingress' ? 'ingresses' : 'hosts';
          process.stderr.write(`token ${t.id} expires ${t.expiresAt}; it can join any number of ${what} until then (weft token delete ${t.id} to revoke)\n`);
        }
        if (how.note) process.stderr.write(`${how.note}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    if (sub === 'list') {
      const { flags, config } = parse(rest, TOKEN_LIST_FLAGS);
      const store = await openExistingStore(config);
      try {
        const tokens = await listTokens(store);
        if (flags.has('--json')) process.stdout.write(JSON.stringify(tokens) + '\n');
        else {
          process.stdout.write(table([['ID', 'ROLE', 'EXPIRES', 'USAGES', 'DESCRIPTION'], ...tokens.map((t) => [t.id, t.role, t.expiresAt, t.usages.join(','), t.description])]));
        }
      } finally {
        await store.close();
      }
      return 0;
    }
    if (sub === 'delete') {
      const { positional, config } = parse(rest, TOKEN_DELETE_FLAGS, { positional: 1 });
      if (positional.length !== 1) throw new UsageError('give the id of the token to delete (see weft token list)');
      const store = await openExistingStore(config);
      try {
        if (!(await deleteToken(store, positional[0]))) {
          process.stderr.write(`weft token delete: no token ${positional[0].split('.')[0]}\n`);
          return 1;
        }
        process.stdout.write(`deleted token ${positional[0].split('.')[0]}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    throw new UsageError(`unknown subcommand "${sub}" (create, list, delete)`);
  });
}

// ---- weft network ------------------------------------------------------------

const NETWORK_HELP = `usage: weft network list [--json]
       weft network add <name> --vni N --cidr CIDR [--host-prefix-length N]
       weft network delete <name> [--force]
${STORE_FLAGS_HELP}
  add: a new overlay network in the cluster config (default host prefix /24 for IPv4, /64 for IPv6);
  every running agent leases a subnet in it and creates its devices within seconds (no restart)
  delete: removes the network and releases every host's subnet in it; running agents remove its
  devices, and a CNI ADD for it is refused. Refused while containers are attached to it unless
  --force, which also removes their endpoints (the agents take their interfaces away)
`;

export const NETWORK_LIST_FLAGS: Spec = { ...JSON_FLAG };
export const NETWORK_ADD_FLAGS: Spec = { '--vni': 'a whole number', '--cidr': 'a CIDR such as 10.245.0.0/16', '--host-prefix-length': 'a whole number' };
export const NETWORK_DELETE_FLAGS: Spec = { '--force': 'bool' };

export async function networkCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = subcommandHelp(argv, NETWORK_HELP);
  if (help !== undefined) return help;
  return guarded(`network ${sub}`, async () => {
    if (sub === 'list') {
      const { flags, config } = parse(rest, NETWORK_LIST_FLAGS);
      const store = await openExistingStore(config);
      try {
        const { config: cc } = await readClusterConfig(store);
        if (flags.has('--json')) process.stdout.write(JSON.stringify(cc.networks) + '\n');
        else {
          process.stdout.write(table([['NAME', 'VNI', 'CIDR', 'HOST-PREFIX'], ...cc.networks.map((n) => [n.name, String(n.vni), n.cidr, `/${n.hostPrefixLength}`])]));
        }
      } finally {
        await store.close();
      }
      return 0;
    }
    if (sub === 'add') {
      const { flags, positional, config } = parse(rest, NETWORK_ADD_FLAGS, { positional: 1 });
      if (positional.length !== 1) throw new UsageError('give the name of the network to add');
      const int = (flag: string): number | undefined => {
        const v = flags.get(flag) as string | undefined;
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a whole number`);
        return Number(v);
      };
      const vni = int('--vni');
      const cidr = flags.get('--cidr') as string | undefined;
      if (vni === undefined || cidr === undefined) throw new UsageError('--vni and --cidr are required');
      const hostPrefixLength = int('--host-prefix-length') ?? (cidr.includes(':') ? 64 : 24);
      const store = await openExistingStore(config);
      try {
        // Validation (unique name, VNI and range) is the cluster config's, with messages naming the field;
        // the edit is applied to the config as stored when it is saved, so concurrent adds all land.
        let saved;
        try {
          saved = await updateClusterConfig(store, (cc) => ({ ...cc, networks: [...cc.networks, { name: positional[0], vni, cidr, hostPrefixLength }] }));
        } catch (err) {
          // a name, VNI or range the config refuses is the operator's input: exit 2 like any bad flag
          if (err instanceof ClusterConfigError) throw new UsageError(err.message);
          throw err;
        }
        const n = saved.config.networks[saved.config.networks.length - 1];
        process.stdout.write(`added network ${n.name} (VNI ${n.vni}, ${n.cidr}, /${n.hostPrefixLength} per host)\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    if (sub === 'delete') {
      const { flags, positional, config } = parse(rest, NETWORK_DELETE_FLAGS, { positional: 1 });
      if (positional.length !== 1) throw new UsageError('give the name of the network to delete');
      const name = positional[0];
      const store = await openExistingStore(config);
      try {
        let res;
        try {
          res = await deleteNetwork(store, name, { force: flags.has('--force') });
        } catch (err) {
          // an unknown name, or the only network: the operator's input, exit 2 like any bad argument
          if (err instanceof UnknownNetworkError || err instanceof ClusterConfigError) throw new UsageError(err.message);
          throw err;
        }
        if (!res.deleted) {
          process.stderr.write(
            `weft network delete: network ${name} has ${res.endpoints} container endpoint(s), e.g. ${res.sample.join(', ')}; ` +
              'detach those containers first, or delete with --force (their interfaces in it are removed)\n',
          );
          return 1;
        }
        const leases = res.leases.map((l) => `${l.host} ${l.subnet}`);
        process.stdout.write(
          `deleted network ${name}: released ${res.leases.length} subnet lease(s)${leases.length > 0 ? ` (${leases.join(', ')})` : ''}` +
            `${res.endpoints > 0 ? `, removed ${res.endpoints} endpoint(s)` : ''}; running agents remove its devices\n`,
        );
      } finally {
        await store.close();
      }
      return 0;
    }
    throw new UsageError(`unknown subcommand "${sub}" (list, add, delete)`);
  });
}

// ---- weft host / weft cert ----------------------------------------------------

const HOST_HELP = `usage: weft host list [--json]
       weft host delete <name> [--json]
       weft host rotate-key <name>... | --all [--json]
  list: the same as weft hosts, through the API with an admin identity (see weft hosts --help)
  delete acts on the store:
${STORE_FLAGS_HELP}
  delete: the host's record, endpoints and subnet leases go, and every certificate issued to it is
  revoked at once on every controller; its name may then be joined again with a token
  rotate-key: asks the hosts' agents to rotate their WireGuard keys (see weft host rotate-key --help)
`;

/** Renewal grace the revocations of a CLI command are kept for: the controller's setting, read from the same sources. */
const keepRevokedMs = (config: ControllerConfig) => config.certRenewGraceMs;

export const HOST_DELETE_FLAGS: Spec = { ...JSON_FLAG };

export async function hostCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = subcommandHelp(argv, HOST_HELP);
  if (help !== undefined) return help;
  return guarded(`host ${sub}`, async () => {
    if (sub === 'delete') {
      const { flags, positional, config } = parse(rest, HOST_DELETE_FLAGS, { positional: 1 });
      if (positional.length !== 1) throw new UsageError('give the name of the host to delete (see weft host list)');
      const name = positional[0];
      const { checkHostName } = await import('../api/validate');
      const bad = checkHostName(name, 'name');
      if (bad) throw new UsageError(bad);
      const store = await openExistingStore(config);
      try {
        const { removeHost } = await import('../service/host-removal');
        const gone = await removeHost(store, name, { now: Date.now(), keepMs: keepRevokedMs(config), reason: 'host deleted by an operator' });
        if (!gone.existed && gone.revoked.length === 0) {
          process.stderr.write(`weft host delete: no host ${name} (nothing registered, no certificate to revoke)\n`);
          return 1;
        }
        const out = { host: name, deleted: gone.existed, endpoints: gone.endpoints, leases: gone.leases, revoked: gone.revoked.map((r) => r.serial) };
        if (flags.has('--json')) process.stdout.write(JSON.stringify(out) + '\n');
        else {
          process.stdout.write(`deleted host ${name}: ${gone.endpoints} endpoints and ${gone.leases} leases released, ${gone.revoked.length} certificates revoked\n`);
        }
      } finally {
        await store.close();
      }
      return 0;
    }
    // `list` is cluster-commands.ts's (weft.ts sends it there)
    throw new UsageError(`unknown subcommand "${sub}" (list, delete, rotate-key)`);
  });
}

const CERT_HELP = `usage: weft cert list [--host NAME | --ingress NAME] [--revoked] [--json]
       weft cert revoke <serial> [--reason TEXT] [--json]
${STORE_FLAGS_HELP}
  list: the client certificates issued and not yet expired (with --revoked: the revoked ones still kept)
  revoke: every controller refuses the certificate from then on; a serial the CA did not record
  (an admin certificate) is kept as revoked for 825 days, the longest a certificate can live
`;

export const CERT_LIST_FLAGS: Spec = { '--host': 'a host name', '--ingress': 'an ingress name', '--revoked': 'bool', ...JSON_FLAG };
export const CERT_REVOKE_FLAGS: Spec = { '--reason': 'text', ...JSON_FLAG };

export async function certCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = subcommandHelp(argv, CERT_HELP);
  if (help !== undefined) return help;
  return guarded(`cert ${sub}`, async () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    if (sub === 'list') {
      const { flags, config } = parse(rest, CERT_LIST_FLAGS);
      if (flags.has('--host') && flags.has('--ingress')) throw new UsageError('--host and --ingress exclude each other');
      const store = await openExistingStore(config);
      try {
        const { listIssuedCerts, listRevokedCerts } = await import('../registry/certificates');
        if (flags.has('--revoked')) {
          const { records } = await listRevokedCerts(store);
          if (flags.has('--json')) process.stdout.write(JSON.stringify(records) + '\n');
          else process.stdout.write(table([['SERIAL', 'KIND', 'NAME', 'EXPIRES', 'REVOKED', 'REASON'], ...records.map((r) => [r.serial, r.kind || '-', r.name || '-', iso(r.notAfter), iso(r.revokedAt), r.reason])]));
          return 0;
        }
        const kind = flags.has('--host') ? 'host' : flags.has('--ingress') ? 'ingress' : undefined;
        const name = (flags.get('--host') ?? flags.get('--ingress')) as string | undefined;
        const certs = await listIssuedCerts(store, { kind, name });
        if (flags.has('--json')) process.stdout.write(JSON.stringify(certs) + '\n');
        else process.stdout.write(table([['SERIAL', 'KIND', 'NAME', 'ISSUED', 'EXPIRES'], ...certs.map((c) => [c.serial, c.kind, c.name, iso(c.issuedAt), iso(c.notAfter)])]));
      } finally {
        await store.close();
      }
      return 0;
    }
    if (sub === 'revoke') {
      const { flags, positional, config } = parse(rest, CERT_REVOKE_FLAGS, { positional: 1 });
      if (positional.length !== 1) throw new UsageError('give the serial of the certificate to revoke (see weft cert list)');
      const { checkSerial, normalizeSerial } = await import('../api/validate');
      const bad = checkSerial(positional[0], 'serial');
      if (bad) throw new UsageError(bad);
      const serial = normalizeSerial(positional[0]);
      const reason = (flags.get('--reason') as string | undefined) ?? 'revoked by an operator';
      if (reason.length > 256 || /[\x00-\x1f\x7f]/.test(reason)) throw new UsageError('--reason: at most 256 characters without control characters');
      const store = await openExistingStore(config);
      try {
        const { listIssuedCerts, revokeCerts } = await import('../registry/certificates');
        const { MAX_LEAF_TTL_DAYS } = await import('../pki/issue');
        const now = Date.now();
        const known = (await listIssuedCerts(store)).find((c) => c.serial === serial);
        const cert = known ?? { serial, kind: '' as const, name: '', notAfter: now + MAX_LEAF_TTL_DAYS * 86_400_000 };
        const [rec] = await revokeCerts(store, [cert], { now, keepMs: keepRevokedMs(config), reason });
        if (flags.has('--json')) process.stdout.write(JSON.stringify(rec) + '\n');
        else process.stdout.write(`revoked certificate ${serial}${known ? ` of ${known.kind} ${known.name}` : ' (not recorded by the CA)'}, kept until ${iso(rec.notAfter + keepRevokedMs(config))}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    throw new UsageError(`unknown subcommand "${sub}" (list, revoke)`);
  });
}

// ---- weft admin-cert ----------------------------------------------------------

const ADMIN_FILES = { cert: 'admin.crt', key: 'admin.key', ca: 'ca.crt' } as const;

export const ADMIN_CERT_FLAGS: Spec = { '--out': 'a directory', '--ttl-days': 'a whole number of days (1 .. 825)' };

export async function adminCertCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'usage: weft admin-cert --out DIR [--ttl-days N] [--data-dir DIR]\n' +
        `  writes ${ADMIN_FILES.cert}, ${ADMIN_FILES.key} and ${ADMIN_FILES.ca} (all 0600) for calling the API as an administrator; default 30 days\n`,
    );
    return 0;
  }
  return guarded('admin-cert', async () => {
    const { flags, config } = parse(argv, ADMIN_CERT_FLAGS, { storeFlags: ['--data-dir'] });
    const out = flags.get('--out') as string | undefined;
    if (!out) throw new UsageError('--out DIR is required (where to write the admin certificate and key)');
    const ttlRaw = (flags.get('--ttl-days') as string | undefined) ?? '30';
    const ttlDays = Number(ttlRaw);
    if (!/^\d+$/.test(ttlRaw) || ttlDays < 1 || ttlDays > 825) throw new UsageError(`--ttl-days: ${JSON.stringify(ttlRaw)} is not a whole number of days from 1 to 825`);
    const { issueClientCert, loadCa } = await import('../pki');
    const ca = await loadCa(config.dataDir);
    const paths = Object.values(ADMIN_FILES).map((f) => join(out, f));
    const taken = paths.filter((p) => existsSync(p));
    if (taken.length) throw new Error(`${taken.join(', ')} already exist; remove them or choose another --out`);
    const issued = await issueClientCert(ca, { host: ADMIN_NAME, ttlDays });
    const fresh = !existsSync(out);
    try {
      await mkdir(out, { recursive: true, mode: 0o700 });
      await writeFile(join(out, ADMIN_FILES.key), issued.keyPem!, { mode: 0o600, flag: 'wx' });
      await writeFile(join(out, ADMIN_FILES.cert), issued.certPem, { mode: 0o600, flag: 'wx' });
      await writeFile(join(out, ADMIN_FILES.ca), ca.certPem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if (fresh) await rm(out, { recursive: true, force: true });
      throw err;
    }
    process.stdout.write(`wrote ${paths.join(', ')} (admin, valid until ${issued.notAfter.toISOString()})\n`);
    return 0;
  });
}

// ---- calling the API as an administrator -------------------------------------

/** The flags of every command that calls the controller's API as an administrator. */
export const ADMIN_CLIENT_SPEC: Spec = { '--server': 'host:port', '--ca': 'a PEM file', '--cert': 'a PEM file', '--key': 'a PEM file', '--insecure': 'bool' };

export const ADMIN_CLIENT_HELP =
  `  --server host:port (default 127.0.0.1:${DEFAULTS.listen.split(':')[1]}), --ca FILE --cert FILE --key FILE, --insecure, --data-dir DIR\n` +
  "  without --cert/--key on the controller's machine, a short-lived admin certificate is made in memory from the CA in the data dir\n";

/** Connects with the admin identity, runs `body`, and closes the connection whatever `body` does. */
export async function withAdminClient<T>(flags: Parsed['flags'], config: ControllerConfig, body: (client: ControllerClient) => Promise<T>): Promise<T> {
  const client = await connectAsAdmin(flags, config);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/** A client of the API with an admin identity: the given certificate, or one made here from the CA in the data dir. */
export async function connectAsAdmin(flags: Parsed['flags'], config: ControllerConfig): Promise<ControllerClient> {
  const server = (flags.get('--server') as string | undefined) ?? `127.0.0.1:${DEFAULTS.listen.split(':')[1]}`;
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(server)) throw new UsageError(`--server: ${JSON.stringify(server)} is not host:port`);
  if (flags.has('--cert') !== flags.has('--key')) throw new UsageError('--cert and --key go together');
  const rpc = await import('@grpc/grpc-js');
  const { connectController } = await import('../api/client/client');
  let creds: grpc.ChannelCredentials;
  let metadata: Record<string, string> | undefined;
  if (flags.has('--insecure')) {
    creds = rpc.credentials.createInsecure();
    metadata = { 'x-weft-host': ADMIN_NAME };
  } else {
    const { clientCredentials } = await import('../api/client/trust');
    // Only the certificate comes from the PKI: made from the CA key, which is on the controller's machine.
    const { CA_CERT_FILE, issueClientCert, loadCa } = await import('../pki');
    const read = (flag: string, path: string) => {
      try {
        return readFileSync(path, 'utf8');
      } catch (err) {
        throw new UsageError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
      }
    };
    const caPem = read('--ca', (flags.get('--ca') as string | undefined) ?? join(config.dataDir, CA_CERT_FILE));
    let certPem: string, keyPem: string;
    if (flags.has('--cert')) {
      certPem = read('--cert', flags.get('--cert') as string);
      keyPem = read('--key', flags.get('--key') as string);
    } else {
      let ca: Ca;
      try {
        ca = await loadCa(config.dataDir);
      } catch (err) {
        throw new UsageError(`no --cert/--key given and no usable CA in ${config.dataDir} to make one (${(err as Error).message})`);
      }
      const issued = await issueClientCert(ca, { host: ADMIN_NAME, ttlDays: 1 / 24 });
      certPem = issued.certPem;
      keyPem = issued.keyPem!;
    }
    creds = clientCredentials({ caPem, certPem, keyPem });
  }
  return connectController({ server, credentials: creds, metadata });
}
