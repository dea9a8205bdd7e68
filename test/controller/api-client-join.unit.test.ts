// Joining, as the client owns it for every role: the join flags both the
// agent and the ingress read (join-flags.ts), with the role's own token
// command and name in what they say, and which failed joins are worth
// waiting out (joinIsTransient). No controller: the joins themselves are
// tested in api-mtls and the roles' start-up tests.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { IdentityError, joinIsTransient } from '../../controller/api/client/credentials';
import { AGENT_JOIN, INGRESS_JOIN, joinOptions, readJoinFlags, type JoinRole } from '../../controller/api/client/join-flags';
import { readSources } from '../../controller/common/config-sources';
import { configErrorOf } from '../helpers/config-error';

const TOKEN = 'abcdef.0123456789abcdef';
const PIN = 'sha256:' + 'ab'.repeat(32);
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

type Files = Record<string, { text: string; mode?: number }>;

/** The join flags as a role reads them: its sources over the join options, files from `files` (mode 0600 unless given). */
function read(role: JoinRole, argv: string[], env: Record<string, string> = {}, files: Files = {}) {
  const file = (p: string) => {
    const f = files[p];
    if (!f) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
    return f;
  };
  const readFile = (p: string) => file(p).text;
  const { pick } = readSources(joinOptions(role), argv, env, readFile);
  return readJoinFlags(role, pick, { readFile, fileMode: (p) => file(p).mode ?? 0o600 });
}

describe.each([
  ['agent', AGENT_JOIN, 'weft token create'],
  ['ingress', INGRESS_JOIN, 'weft token create --role ingress'],
] as const)('join flags of the %s', (name, role, tokenCommand) => {
  it('reads the server, the token, the pin and the CA file', () => {
    const c = read(role, ['--server', '[fd00::1]:7443', '--ca-cert', '/ca.crt'], { WEFT_TOKEN: TOKEN, WEFT_CA_CERT_HASH: PIN.toUpperCase().replace('SHA256', 'sha256') }, { '/ca.crt': { text: PEM } });
    expect(c).toEqual({
      server: '[fd00::1]:7443', serverHostPort: { host: 'fd00::1', port: 7443 }, token: TOKEN, tokenSource: 'WEFT_TOKEN',
      caCertHash: PIN, caCertFile: '/ca.crt', caPem: PEM,
    });
  });

  it('takes the token from --token-file, WEFT_TOKEN_FILE or the file key tokenFile, trimmed, without a warning', () => {
    const files: Files = { '/run/token': { text: `  ${TOKEN}\n` }, '/c.json': { text: JSON.stringify({ server: 'c:1', tokenFile: '/run/token' }) } };
    expect(read(role, ['--server', 'c:1', '--token-file', '/run/token'], {}, files)).toEqual({
      server: 'c:1', serverHostPort: { host: 'c', port: 1 }, token: TOKEN, tokenSource: '--token-file /run/token',
    });
    expect(read(role, ['--server', 'c:1'], { WEFT_TOKEN_FILE: '/run/token' }, files).tokenSource).toBe('WEFT_TOKEN_FILE /run/token');
    expect(read(role, ['--config', '/c.json'], {}, files).tokenSource).toBe('config file /c.json: "tokenFile" /run/token');
  });

  it('warns about a token file others can read, and about a token on the command line, naming the role', () => {
    expect(read(role, ['--server', 'c:1', '--token-file', '/t'], {}, { '/t': { text: TOKEN, mode: 0o100604 } }).warnings)
      .toEqual(['--token-file: /t is readable by other users than its owner (mode 0604); chmod 600 it']);
    expect(read(role, ['--server', 'c:1', '--token', TOKEN]).warnings).toEqual([
      `--token puts the join token on the command line, where every local user can read it (/proc/PID/cmdline, ps) while the ${name} runs; ` +
        'give it with --token-file FILE (a file only root can read) or the WEFT_TOKEN variable instead',
    ]);
    // The environment and the config file are private to the process's owner.
    expect(read(role, ['--server', 'c:1'], { WEFT_TOKEN: TOKEN }).warnings).toBeUndefined();
  });

  it(`refuses bad values naming their source and "${tokenCommand}", never echoing the token`, () => {
    expect(configErrorOf(() => read(role, []))).toBe('--server is required (the controller as host:port; or WEFT_SERVER, or "server" in the config file)');
    expect(configErrorOf(() => read(role, ['--server', 'ctl']))).toBe('--server: "ctl" is not the controller as host:port');
    const badToken = configErrorOf(() => read(role, ['--server', 'c:1', '--token', 'secret-value']));
    expect(badToken).toBe(`--token: the value is not a bootstrap token <6 chars>.<16 chars> from ${tokenCommand}`);
    const badFile = configErrorOf(() => read(role, ['--server', 'c:1', '--token-file', '/t'], {}, { '/t': { text: 'secret-value\n' } }));
    expect(badFile).toBe(`--token-file: /t does not hold a bootstrap token <6 chars>.<16 chars> from ${tokenCommand}`);
    expect(badToken + badFile).not.toContain('secret');
    expect(configErrorOf(() => read(role, ['--server', 'c:1', '--token-file', '/nope']))).toBe("--token-file: cannot read /nope: ENOENT: no such file or directory, open '/nope'");
    expect(configErrorOf(() => read(role, ['--server', 'c:1', '--token', TOKEN], { WEFT_TOKEN_FILE: '/t' })))
      .toBe('--token and WEFT_TOKEN_FILE both give the token: give one of them');
    expect(configErrorOf(() => read(role, ['--server', 'c:1', '--ca-cert-hash', 'md5:00']))).toBe('--ca-cert-hash: "md5:00" is not sha256:<64 hex digits>, as the controller prints it');
    expect(configErrorOf(() => read(role, ['--server', 'c:1', '--ca-cert', '/nope']))).toMatch(/^--ca-cert: cannot read \/nope: ENOENT/);
    expect(configErrorOf(() => read(role, ['--server', 'c:1'], { WEFT_CA_CERT: '/x' }, { '/x': { text: 'hello' } }))).toBe('WEFT_CA_CERT: /x holds no PEM certificate');
  });
});

describe('joinOptions', () => {
  it('gives both roles the same flags, variables and file keys; only the token command differs', () => {
    const shape = (role: JoinRole) => joinOptions(role).map((o) => [o.key, o.flag, o.env, o.kind]);
    expect(shape(INGRESS_JOIN)).toEqual(shape(AGENT_JOIN));
    expect(shape(AGENT_JOIN).map(([, flag]) => flag)).toEqual(['--server', '--token', '--token-file', '--ca-cert-hash', '--ca-cert']);
    const forms = (role: JoinRole) => joinOptions(role).map((o) => o.form);
    expect(forms(AGENT_JOIN).filter((f, i) => f !== forms(INGRESS_JOIN)[i])).toEqual(['a bootstrap token <6 chars>.<16 chars> from weft token create']);
  });
});

describe('joinIsTransient', () => {
  const failed = (cause?: unknown) => new IdentityError('join failed', cause === undefined ? undefined : { cause });
  const grpcError = (code: grpc.status) => Object.assign(new Error(grpc.status[code]), { code });

  it('waits out a controller that is away, starting or busy', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE']) {
      expect(joinIsTransient(failed(Object.assign(new Error(code), { code }))), code).toBe(true);
    }
    expect(joinIsTransient(failed(grpcError(grpc.status.UNAVAILABLE)))).toBe(true);
    expect(joinIsTransient(failed(grpcError(grpc.status.DEADLINE_EXCEEDED)))).toBe(true);
    expect(joinIsTransient(failed(new Error('no TLS handshake within 5000 ms')))).toBe(true);
  });

  it('stops on a refusal, a local problem and anything that is not a failed join', () => {
    expect(joinIsTransient(failed(grpcError(grpc.status.PERMISSION_DENIED)))).toBe(false);
    expect(joinIsTransient(failed(grpcError(grpc.status.UNAUTHENTICATED)))).toBe(false);
    expect(joinIsTransient(failed(Object.assign(new Error('denied'), { code: 'EACCES' })))).toBe(false);
    expect(joinIsTransient(failed(new Error('CA pin does not match')))).toBe(false);
    expect(joinIsTransient(failed())).toBe(false);
    expect(joinIsTransient(Object.assign(new Error('ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(false);
  });
});
