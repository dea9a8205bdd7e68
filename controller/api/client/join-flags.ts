// The flags that join a role to the cluster, read here once for every role
// that joins through this client (`weft agent`, `weft ingress`), so each
// takes the controller, the token and the CA pin the same way and words
// their errors the same way:
//
//   --server host:port      the controller
//   --token-file FILE       the bootstrap token, from a file (the private way)
//   --token ID.SECRET       or the token itself (works, with a warning)
//   --ca-cert-hash sha256:  the CA pin, as the controller prints it
//   --ca-cert FILE          or the CA certificate itself
//
// Each also reads WEFT_<NAME> and a key of the JSON config file, as every
// other flag does (controller/common/config-sources.ts). This module loads
// nothing heavy (no gRPC, no x509), so --help and a bad flag answer at once.
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, formatHostPort, parseHostPort, type HostPort, type OptionSpec, type Raw } from '../../common/config-sources';

export type JoinKey = 'server' | 'token' | 'tokenFile' | 'caCertHash' | 'caCert';

/** Who is joining: its name in messages ("the agent runs") and the command that makes its token. */
export type JoinRole = { name: string; tokenCommand: string };

export const AGENT_JOIN: JoinRole = { name: 'agent', tokenCommand: 'weft token create' };
export const INGRESS_JOIN: JoinRole = { name: 'ingress', tokenCommand: 'weft token create --role ingress' };

/** The join options, in the order they appear among a role's options (and so in its "flags:" list). */
export function joinOptions(role: JoinRole): Array<OptionSpec<JoinKey>> {
  return [
    { key: 'server', flag: '--server', env: 'WEFT_SERVER', kind: 'string', form: 'the controller as host:port' },
    { key: 'token', flag: '--token', env: 'WEFT_TOKEN', kind: 'string', form: `a bootstrap token <6 chars>.<16 chars> from ${role.tokenCommand}` },
    { key: 'tokenFile', flag: '--token-file', env: 'WEFT_TOKEN_FILE', kind: 'string', form: 'a path to a file holding the bootstrap token (mode 0600)' },
    { key: 'caCertHash', flag: '--ca-cert-hash', env: 'WEFT_CA_CERT_HASH', kind: 'string', form: 'sha256:<64 hex digits>, as the controller prints it' },
    { key: 'caCert', flag: '--ca-cert', env: 'WEFT_CA_CERT', kind: 'string', form: "a path to the cluster CA certificate (the controller's ca.crt)" },
  ];
}

/** What the join flags say, as each role's config holds it. */
export type JoinSettings = {
  /** The controller's gRPC address (host:port; an IPv6 host in brackets). */
  server: string;
  serverHostPort: HostPort;
  /** Bootstrap token; needed only until the role has joined. */
  token?: string;
  /** Where the token came from: a flag, a variable, the config file or the token file. */
  tokenSource?: string;
  caCertHash?: string;
  caCertFile?: string;
  /** The CA file's contents, read at load time so an unreadable file is a config error. */
  caPem?: string;
  /** Things that work but should not be done so (a token on the command line); the role logs each at start. */
  warnings?: string[];
};

export type JoinFileAccess = {
  readFile?: ((path: string) => string) | undefined;
  /** The mode bits of a file (the token file must not be readable by others); default: stat. */
  fileMode?: ((path: string) => number) | undefined;
};

const TOKEN_RE = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;

/**
 * The join settings from the role's sources (`pick`, from readSources over
 * options that include joinOptions(role)). Every bad value is a ConfigError
 * naming the flag, variable or file key it came from; the token itself is
 * never echoed.
 */
export function readJoinFlags(role: JoinRole, pick: (k: JoinKey) => Raw | undefined, io: JoinFileAccess = {}): JoinSettings {
  const readFile = io.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const fileMode = io.fileMode ?? ((p: string) => statSync(p).mode);
  const options = joinOptions(role);
  const formOf = (k: JoinKey) => options.find((o) => o.key === k)!.form;
  const fail = (raw: Raw, k: JoinKey, shown = JSON.stringify(raw.value)) => new ConfigError(`${raw.source}: ${shown} is not ${formOf(k)}`);
  const warnings: string[] = [];

  const serverRaw = pick('server');
  if (!serverRaw) throw new ConfigError(`--server is required (${formOf('server')}; or WEFT_SERVER, or "server" in the config file)`);
  const serverHostPort = parseHostPort(serverRaw, formOf('server'));

  const token = readToken(role, pick, readFile, fileMode, formOf('token'), warnings);

  const hashRaw = pick('caCertHash');
  let caCertHash: string | undefined;
  if (hashRaw) {
    caCertHash = (hashRaw.value as string).trim().toLowerCase();
    if (!/^sha256:[0-9a-f]{64}$/.test(caCertHash)) throw fail(hashRaw, 'caCertHash');
  }
  const caRaw = pick('caCert');
  let caPem: string | undefined;
  if (caRaw) {
    try {
      caPem = readFile(caRaw.value as string);
    } catch (e) {
      throw new ConfigError(`${caRaw.source}: cannot read ${caRaw.value as string}: ${(e as Error).message}`);
    }
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`${caRaw.source}: ${caRaw.value as string} holds no PEM certificate`);
  }

  return {
    server: formatHostPort(serverHostPort),
    serverHostPort,
    ...(token ?? {}),
    ...(caCertHash ? { caCertHash } : {}),
    ...(caRaw ? { caCertFile: caRaw.value as string, caPem } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

/**
 * The bootstrap token and where it came from. Flags are in every process's
 * /proc/PID/cmdline, readable by every local user for as long as the role
 * runs, so --token works but earns a warning naming the private ways: a file
 * only root can read (--token-file), or WEFT_TOKEN (/proc/PID/environ is
 * private to the process's owner).
 */
function readToken(
  role: JoinRole, pick: (k: JoinKey) => Raw | undefined, readFile: (p: string) => string, fileMode: (p: string) => number,
  tokenForm: string, warnings: string[],
): { token: string; tokenSource: string } | undefined {
  const tokenRaw = pick('token');
  const fileRaw = pick('tokenFile');
  if (tokenRaw && fileRaw) throw new ConfigError(`${tokenRaw.source} and ${fileRaw.source} both give the token: give one of them`);
  if (fileRaw) {
    const path = fileRaw.value as string;
    let text: string;
    let mode: number;
    try {
      mode = fileMode(path);
      text = readFile(path);
    } catch (e) {
      throw new ConfigError(`${fileRaw.source}: cannot read ${path}: ${(e as Error).message}`);
    }
    // The token is a secret: never echo it back.
    if (!TOKEN_RE.test(text.trim())) throw new ConfigError(`${fileRaw.source}: ${path} does not hold ${tokenForm}`);
    if ((mode & 0o077) !== 0) {
      warnings.push(`${fileRaw.source}: ${path} is readable by other users than its owner (mode 0${(mode & 0o777).toString(8)}); chmod 600 it`);
    }
    return { token: text.trim(), tokenSource: `${fileRaw.source} ${path}` };
  }
  if (!tokenRaw) return undefined;
  if (!TOKEN_RE.test(tokenRaw.value as string)) throw new ConfigError(`${tokenRaw.source}: the value is not ${tokenForm}`);
  if (tokenRaw.source === '--token') {
    warnings.push(
      `--token puts the join token on the command line, where every local user can read it (/proc/PID/cmdline, ps) while the ${role.name} runs; ` +
        'give it with --token-file FILE (a file only root can read) or the WEFT_TOKEN variable instead',
    );
  }
  return { token: tokenRaw.value as string, tokenSource: tokenRaw.source };
}
