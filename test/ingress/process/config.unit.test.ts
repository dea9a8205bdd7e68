// The ingress's flags: defaults, the three sources and their precedence, and
// an error naming the flag for every kind of bad value (weft ingress exits 2
// on each of them, before it opens anything).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INGRESS_OPTIONS, loadIngressConfig } from '../../../ingress/config';
import { parseDurationMs } from '../../../controller/common/config-sources';
import { configErrorOf } from '../../helpers/config-error';

const PIN = 'sha256:' + 'ab'.repeat(32);
const TOKEN = 'abcdef.0123456789abcdef';
const machine = () => 'edge-1';
const load = (argv: string[], env: Record<string, string> = {}, file?: string) =>
  loadIngressConfig(argv, env, { machineHostname: machine, readFile: () => file ?? '' });

describe('loadIngressConfig', () => {
  it('fills defaults around the required server', () => {
    const c = load(['--server', '10.0.0.1:7443']);
    expect(c).toMatchObject({
      server: '10.0.0.1:7443', name: 'edge-1', rack: '', datacenter: '', stateDir: '/var/lib/weft/ingress',
      metricsListen: { host: '127.0.0.1', port: 7082 }, acceptProxyFrom: [], drainTimeoutMs: 30_000, l4SourceNat: 'masquerade',
      nftTable: 'weft-ingress', accessLogSample: 0, takeover: false, logLevel: 'info',
      limits: { maxConnections: 10_000, maxHeaderBytes: 16_384, headerTimeoutMs: 10_000, idleTimeoutMs: 60_000, connectTimeoutMs: 3000, upstreamTimeoutMs: 60_000 },
    });
    expect(c.listenAddress).toBeUndefined();
    expect(c.token).toBeUndefined();
  });

  it('takes every flag', () => {
    const c = load([
      '--server', 'ctl.example:7443', '--token', TOKEN, '--ca-cert-hash', PIN, '--name', 'lb-7', '--rack', 'r2', '--datacenter', 'dc1',
      '--state-dir', '/srv/ingress', '--listen-address', '192.0.2.10', '--metrics-listen', '0.0.0.0:9100', '--accept-proxy-from', '10.0.0.0/8,192.0.2.7/32',
      '--max-connections', '500', '--max-header-bytes', '8192', '--header-timeout', '2s', '--idle-timeout', '5m', '--connect-timeout', '250ms',
      '--upstream-timeout', '90s', '--drain-timeout', '0s', '--l4-source-nat', 'none', '--nft-table', 'edge_lb', '--access-log-sample', '0.25',
      '--takeover', '--log-level', 'debug',
    ]);
    expect(c).toMatchObject({
      server: 'ctl.example:7443', token: TOKEN, caCertHash: PIN, name: 'lb-7', rack: 'r2', datacenter: 'dc1', stateDir: '/srv/ingress',
      listenAddress: '192.0.2.10', metricsListen: { host: '0.0.0.0', port: 9100 }, acceptProxyFrom: ['10.0.0.0/8', '192.0.2.7/32'],
      limits: { maxConnections: 500, maxHeaderBytes: 8192, headerTimeoutMs: 2000, idleTimeoutMs: 300_000, connectTimeoutMs: 250, upstreamTimeoutMs: 90_000 },
      drainTimeoutMs: 0, l4SourceNat: 'none', nftTable: 'edge_lb', accessLogSample: 0.25, takeover: true, logLevel: 'debug',
    });
  });

  it('takes flags over WEFT_* over the config file', () => {
    const file = JSON.stringify({ server: 'file:7443', rack: 'r-file', datacenter: 'dc-file', drainTimeout: '5s', takeover: true, acceptProxyFrom: ['10.1.0.0/16'] });
    const c = load(['--config', '/x.json', '--rack', 'r-flag'], { WEFT_RACK: 'r-env', WEFT_DATACENTER: 'dc-env', WEFT_NAME: 'env-name' }, file);
    expect(c).toMatchObject({ server: 'file:7443', rack: 'r-flag', datacenter: 'dc-env', name: 'env-name', drainTimeoutMs: 5000, takeover: true, acceptProxyFrom: ['10.1.0.0/16'], configFile: '/x.json' });
  });

  it('takes the token from --token-file or WEFT_TOKEN_FILE, off the command line, and warns when others can read the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-ingress-token-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      const real = (argv: string[], env: Record<string, string> = {}) => loadIngressConfig(argv, env, { machineHostname: machine });
      const fromFlag = real(['--server', 'c:1', '--token-file', file]);
      expect(fromFlag).toMatchObject({ token: TOKEN, tokenSource: `--token-file ${file}` });
      expect(fromFlag.warnings).toBeUndefined();
      expect(real(['--server', 'c:1'], { WEFT_TOKEN_FILE: file })).toMatchObject({ token: TOKEN, tokenSource: `WEFT_TOKEN_FILE ${file}` });

      chmodSync(file, 0o640);
      expect(real(['--server', 'c:1', '--token-file', file]).warnings).toEqual([`--token-file: ${file} is readable by other users than its owner (mode 0640); chmod 600 it`]);

      writeFileSync(file, 'not-a-token-but-a-secret\n');
      const refused = configErrorOf(() => real(['--server', 'c:1', '--token-file', file]));
      expect(refused).toBe(`--token-file: ${file} does not hold a bootstrap token <6 chars>.<16 chars> from weft token create --role ingress`);
      expect(refused).not.toContain('secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes --token with a warning that the ingress has it on its command line; WEFT_TOKEN earns none', () => {
    const c = load(['--server', 'c:1', '--token', TOKEN]);
    expect(c).toMatchObject({ token: TOKEN, tokenSource: '--token' });
    expect(c.warnings).toEqual([expect.stringMatching(/^--token puts the join token on the command line, .* while the ingress runs; .*--token-file FILE.*WEFT_TOKEN/)]);
    const e = load(['--server', 'c:1'], { WEFT_TOKEN: TOKEN });
    expect(e).toMatchObject({ token: TOKEN, tokenSource: 'WEFT_TOKEN' });
    expect(e.warnings).toBeUndefined();
    expect(configErrorOf(() => load(['--server', 'c:1', '--token', TOKEN], { WEFT_TOKEN_FILE: '/t' }))).toBe('--token and WEFT_TOKEN_FILE both give the token: give one of them');
  });

  it('every option has a WEFT_ variable and a flag of its own', () => {
    for (const o of INGRESS_OPTIONS) expect(o.env).toBe(`WEFT_${o.flag.slice(2).toUpperCase().replace(/-/g, '_')}`);
  });

  it.each([
    [[], '--server is required'],
    [['--server', 'nope'], '--server: "nope" is not the controller as host:port'],
    [['--token', 'secret-token'], '--token: the value is not a bootstrap token <6 chars>.<16 chars> from weft token create --role ingress'],
    [['--token-file', '/nonexistent/token'], '--token-file: cannot read /nonexistent/token'],
    [['--ca-cert-hash', 'md5:00'], '--ca-cert-hash: "md5:00" is not sha256:'],
    [['--name', 'Bad_Name'], '--name'],
    [['--name', 'admin'], 'reserved'],
    [['--rack', 'R 1'], '--rack'],
    [['--state-dir', 'relative/dir'], '--state-dir: "relative/dir" is not an absolute directory path'],
    [['--state-dir', '/' + 'x'.repeat(100)], '--state-dir'],
    [['--listen-address', '300.1.1.1'], '--listen-address: "300.1.1.1" is not an IPv4 or IPv6 address'],
    [['--metrics-listen', '127.0.0.1'], '--metrics-listen: "127.0.0.1" is not host:port'],
    [['--accept-proxy-from', '10.0.0.1/8'], '--accept-proxy-from: "10.0.0.1/8" is not a CIDR'],
    [['--accept-proxy-from', '10.0.0.0/8,'], '--accept-proxy-from'],
    [['--max-connections', '0'], '--max-connections: "0" is not a whole number from 1'],
    [['--max-connections', '12k'], '--max-connections'],
    [['--max-header-bytes', '100'], '--max-header-bytes: "100"'],
    [['--header-timeout', 'soon'], '--header-timeout: "soon" is not a duration'],
    [['--idle-timeout', '10ms'], '--idle-timeout: "10ms"'],
    [['--connect-timeout', '-1s'], '--connect-timeout'],
    [['--upstream-timeout', '2d'], '--upstream-timeout'],
    [['--drain-timeout', '2h'], '--drain-timeout: "2h" is not a duration from 0s to 1h'],
    [['--l4-source-nat', 'snat'], '--l4-source-nat: "snat" is not masquerade|none'],
    [['--nft-table', '1table'], '--nft-table: "1table" is not an nftables table name'],
    [['--nft-table', 'x'.repeat(40)], '--nft-table'],
    [['--access-log-sample', '1.5'], '--access-log-sample: "1.5" is not a fraction from 0'],
    [['--access-log-sample', '10%'], '--access-log-sample'],
    [['--takeover=maybe'], '--takeover: "maybe" is not true or false'],
    [['--log-level', 'loud'], '--log-level: "loud" is not a log level'],
    [['--listen', '0.0.0.0:80'], 'unknown flag --listen'],
  ])('refuses %j naming the flag', (args, message) => {
    const argv = args[0] === '--server' || args.length === 0 ? args : ['--server', '10.0.0.1:7443', ...args];
    expect(configErrorOf(() => load(argv))).toContain(message);
  });

  it('names the variable and the file key a bad value came from', () => {
    expect(configErrorOf(() => load(['--server', 'c:1'], { WEFT_DRAIN_TIMEOUT: 'forever' }))).toContain('WEFT_DRAIN_TIMEOUT: "forever"');
    expect(configErrorOf(() => load(['--config', '/c.json'], {}, JSON.stringify({ server: 'c:1', maxConnections: 'lots' })))).toContain('config file /c.json: "maxConnections": "lots"');
    expect(configErrorOf(() => load(['--config', '/c.json'], {}, JSON.stringify({ server: 'c:1', listen: 'x' })))).toContain('unknown key "listen"');
  });

  it('reads the machine hostname for the name, and says where a bad one came from', () => {
    expect(configErrorOf(() => loadIngressConfig(['--server', 'c:1'], {}, { machineHostname: () => 'Not_A_Label' }))).toContain("the machine's hostname (set --name)");
  });
});

describe('parseDurationMs', () => {
  it('reads ms, s, m, h and bare seconds', () => {
    expect([parseDurationMs('250ms'), parseDurationMs('3s'), parseDurationMs('2m'), parseDurationMs('1h'), parseDurationMs('7')]).toEqual([250, 3000, 120_000, 3_600_000, 7000]);
    expect(parseDurationMs('1.5s')).toBeUndefined();
    expect(parseDurationMs('')).toBeUndefined();
  });
});
