import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certNames, ConfigError, loadControllerConfig } from '../../controller/daemon/config';

const noFile = (p: string): string => {
  throw new Error(`no file ${p} in this test`);
};
const files = (map: Record<string, unknown>) => (p: string): string => {
  if (!(p in map)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
  const v = map[p];
  return typeof v === 'string' ? v : JSON.stringify(v);
};
const load = (argv: string[], env: Record<string, string> = {}, read = noFile) => loadControllerConfig(argv, env, read);
const fails = (argv: string[], env: Record<string, string>, read: (p: string) => string, message: string | RegExp) => {
  expect(() => loadControllerConfig(argv, env, read)).toThrow(ConfigError);
  expect(() => loadControllerConfig(argv, env, read)).toThrow(message);
};

describe('defaults', () => {
  it('listens on 0.0.0.0:7443 with TLS, metrics on 127.0.0.1:7080, data in /var/lib/weft', () => {
    expect(load([])).toEqual({
      listen: { host: '0.0.0.0', port: 7443 },
      metricsListen: { host: '127.0.0.1', port: 7080 },
      dataDir: '/var/lib/weft',
      storeUrl: 'sqlite:/var/lib/weft/weft.db',
      advertise: [],
      logLevel: 'info',
      tls: true,
      warnings: [],
      clientCertTtlMs: 24 * 3_600_000,
      certRenewGraceMs: 7 * 24 * 3_600_000,
      joinRatePerSecond: 1,
      joinBurst: 10,
    });
  });

  it('derives the store from the data dir unless the store is given', () => {
    expect(load(['--data-dir', '/srv/weft']).storeUrl).toBe('sqlite:/srv/weft/weft.db');
    expect(load(['--data-dir', '/srv/weft', '--store', 'etcd:http://10.0.0.1:2379']).storeUrl).toBe('etcd:http://10.0.0.1:2379');
  });
});

describe('precedence: flags > env > file > defaults', () => {
  const file = files({
    '/etc/weft/controller.json': { listen: '10.0.0.1:7000', logLevel: 'warn', dataDir: '/file', advertise: ['file.example'], metricsListen: '127.0.0.1:9000' },
  });
  it('file over defaults', () => {
    const c = load(['--config', '/etc/weft/controller.json'], {}, file);
    expect(c.listen).toEqual({ host: '10.0.0.1', port: 7000 });
    expect(c.logLevel).toBe('warn');
    expect(c.dataDir).toBe('/file');
    expect(c.storeUrl).toBe('sqlite:/file/weft.db');
    expect(c.advertise).toEqual(['file.example']);
    expect(c.configFile).toBe('/etc/weft/controller.json');
  });
  it('env over file, and WEFT_CONFIG names the file', () => {
    const c = load([], { WEFT_CONFIG: '/etc/weft/controller.json', WEFT_LISTEN: '10.0.0.2:7001', WEFT_ADVERTISE: 'a.example, 192.0.2.1' }, file);
    expect(c.listen).toEqual({ host: '10.0.0.2', port: 7001 });
    expect(c.logLevel).toBe('warn');
    expect(c.advertise).toEqual(['a.example', '192.0.2.1']);
  });
  it('flags over env over file, in both --flag value and --flag=value forms', () => {
    const c = load(
      ['--config=/etc/weft/controller.json', '--listen=[::1]:7002', '--log-level', 'debug', '--advertise', 'x.example', '--advertise=y.example,2001:db8::1'],
      { WEFT_LISTEN: '10.0.0.2:7001', WEFT_LOG_LEVEL: 'error', WEFT_METRICS_LISTEN: '127.0.0.1:9100' },
      file,
    );
    expect(c.listen).toEqual({ host: '::1', port: 7002 });
    expect(c.logLevel).toBe('debug');
    expect(c.metricsListen).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(c.advertise).toEqual(['x.example', 'y.example', '2001:db8::1']);
    expect(c.dataDir).toBe('/file');
  });
  it('an empty environment variable counts as unset', () => {
    expect(load([], { WEFT_LISTEN: '' }).listen.port).toBe(7443);
  });
  it('--config beats WEFT_CONFIG', () => {
    const two = files({ '/a.json': { logLevel: 'trace' }, '/b.json': { logLevel: 'fatal' } });
    expect(load(['--config', '/a.json'], { WEFT_CONFIG: '/b.json' }, two).logLevel).toBe('trace');
  });
});

describe('--insecure', () => {
  it('is allowed on loopback only, and always comes with a loud warning', () => {
    const c = load(['--insecure', '--listen', '127.0.0.1:7443']);
    expect(c.tls).toBe(false);
    expect(c.warnings.join('\n')).toMatch(/TLS IS OFF \(--insecure\).*only for local testing/);
    expect(load([], { WEFT_INSECURE: '1', WEFT_LISTEN: 'localhost:7443' }).tls).toBe(false);
    expect(load(['--insecure=false']).tls).toBe(true);
    fails(['--insecure'], {}, noFile, /--insecure: plaintext gRPC is only for local testing .* but listen is 0\.0\.0\.0:7443; add --listen 127\.0\.0\.1:7443/);
    fails([], { WEFT_INSECURE: 'true', WEFT_LISTEN: '10.1.1.1:7443' }, noFile, /^WEFT_INSECURE: plaintext gRPC/);
  });
  it('does not swallow the next argument', () => {
    fails(['--insecure', '127.0.0.1:7443'], {}, noFile, 'unexpected argument "127.0.0.1:7443"');
  });
});

describe('validation names the source and the allowed form', () => {
  it('listen addresses', () => {
    fails(['--listen', '0.0.0.0:99999'], {}, noFile, '--listen: "0.0.0.0:99999" is not host:port (port 1-65535)');
    fails(['--listen', '0.0.0.0:0'], {}, noFile, '--listen: "0.0.0.0:0" is not host:port (port 1-65535)');
    fails(['--listen', '0.0.0.0'], {}, noFile, '--listen: "0.0.0.0" is not host:port');
    fails(['--listen', '::1:7443'], {}, noFile, '--listen: "::1:7443" is not host:port');
    fails(['--listen', '[10.0.0.1]:7443'], {}, noFile, '--listen: "[10.0.0.1]:7443" is not host:port');
    fails(['--listen', 'bad_host:7443'], {}, noFile, '--listen: "bad_host:7443" is not host:port');
    fails([], { WEFT_METRICS_LISTEN: '127.0.0.1:port' }, noFile, 'WEFT_METRICS_LISTEN: "127.0.0.1:port" is not host:port (port 1-65535)');
    fails(['--config', '/c.json'], {}, files({ '/c.json': { listen: '1.2.3.4:70000' } }), 'config file /c.json: "listen": "1.2.3.4:70000" is not host:port (port 1-65535)');
  });
  it('store URL', () => {
    fails(['--store', 'mysql://x'], {}, noFile, /^--store: invalid store URL "mysql:\/\/x": unknown scheme "mysql" \(accepted forms: sqlite:/);
    fails([], { WEFT_STORE: 'etcd:10.0.0.1:2379' }, noFile, /^WEFT_STORE: invalid store URL .*not a URL|^WEFT_STORE: invalid store URL .*must be http/);
  });
  it('advertise names', () => {
    expect(load(['--advertise', 'Ctl.Example,[fd00::1],10.0.0.5,ctl.example']).advertise).toEqual(['ctl.example', 'fd00::1', '10.0.0.5']);
    fails(['--advertise', 'ok.example,not a name'], {}, noFile, '--advertise: "not a name" is not a DNS name or IP address');
    fails(['--advertise', 'a,,b'], {}, noFile, '--advertise: "a,,b" has an empty entry');
    fails(['--config', '/c.json'], {}, files({ '/c.json': { advertise: [1] } }), 'config file /c.json: "advertise": [1] is not a list of DNS names or IP addresses');
  });
  it('log level', () => {
    fails(['--log-level', 'verbose'], {}, noFile, '--log-level: "verbose" is not a log level (fatal|error|warn|info|debug|trace|silent)');
    fails(['--config', '/c.json'], {}, files({ '/c.json': { logLevel: 'loud' } }), 'config file /c.json: "logLevel": "loud" is not a log level');
  });
  it('booleans', () => {
    fails(['--insecure=maybe'], {}, noFile, '--insecure: "maybe" is not true or false');
    fails([], { WEFT_INSECURE: 'on' }, noFile, 'WEFT_INSECURE: "on" is not true or false (or 1/0)');
    fails(['--config', '/c.json'], {}, files({ '/c.json': { insecure: 'yes' } }), 'config file /c.json: "insecure": "yes" is not true or false');
  });
  it('data dir', () => {
    fails(['--data-dir', ' '], {}, noFile, '--data-dir: " " is not a directory path');
    fails(['--config', '/c.json'], {}, files({ '/c.json': { dataDir: 7 } }), 'config file /c.json: "dataDir": 7 is not a directory path');
  });
  it('flags: unknown, missing values, repeats, stray arguments', () => {
    fails(['--lisen', '1.2.3.4:5'], {}, noFile, /^unknown flag --lisen \(flags: --listen, --metrics-listen/);
    fails(['--listen'], {}, noFile, '--listen needs a value (host:port (port 1-65535))');
    fails(['--listen', '--insecure'], {}, noFile, '--listen needs a value');
    fails(['--listen', '127.0.0.1:1', '--listen=127.0.0.1:2'], {}, noFile, '--listen given more than once');
    fails(['controller'], {}, noFile, 'unexpected argument "controller"');
    fails(['--config'], {}, noFile, '--config needs a value (a JSON file path)');
  });
  it('config file: unreadable, not JSON, not an object, unknown key', () => {
    fails(['--config', '/missing.json'], {}, files({}), "--config: cannot read /missing.json: ENOENT: no such file or directory, open '/missing.json'");
    fails([], { WEFT_CONFIG: '/missing.json' }, files({}), /^WEFT_CONFIG: cannot read \/missing\.json/);
    fails(['--config', '/c.json'], {}, files({ '/c.json': '{"listen": ' }), /^config file \/c\.json: not valid JSON/);
    fails(['--config', '/c.json'], {}, files({ '/c.json': '[1]' }), 'config file /c.json: must be a JSON object');
    fails(['--config', '/c.json'], {}, files({ '/c.json': { lisen: 'x' } }), 'config file /c.json: unknown key "lisen" (keys: listen, metricsListen');
  });
});

describe('with a real file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it('reads the JSON file from disk by default', async () => {
    const p = join(dir, 'controller.json');
    await writeFile(p, JSON.stringify({ listen: '127.0.0.1:17443', insecure: true }));
    const c = loadControllerConfig(['--config', p], {});
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 17443 });
    expect(c.tls).toBe(false);
    expect(c.warnings[0]).toContain(`config file ${p}: "insecure"`);
  });
});

describe('certNames', () => {
  it('adds the machine name, a specific listen host and loopback to the advertised names, once each', () => {
    const c = load(['--listen', '10.0.0.5:7443', '--advertise', 'ctl.example,10.0.0.5']);
    expect(certNames(c, 'Node-1')).toEqual(['ctl.example', '10.0.0.5', 'node-1', 'localhost', '127.0.0.1', '::1']);
    expect(certNames(load([]), 'bad_name')).toEqual(['localhost', '127.0.0.1', '::1']);
  });

  it("names the machine's addresses when listening on every address, and only the listen address otherwise", () => {
    const addrs = ['192.0.2.5', '2001:db8::5'];
    expect(certNames(load([]), 'ctl', addrs)).toEqual(['ctl', '192.0.2.5', '2001:db8::5', 'localhost', '127.0.0.1', '::1']);
    expect(certNames(load(['--advertise', 'ctl.example']), 'ctl', addrs)).toEqual(['ctl.example', 'ctl', '192.0.2.5', '2001:db8::5', 'localhost', '127.0.0.1', '::1']);
    expect(certNames(load(['--listen', '192.0.2.5:7443']), 'ctl', ['198.51.100.7'])).toEqual(['ctl', '192.0.2.5', 'localhost', '127.0.0.1', '::1']);
  });
});
