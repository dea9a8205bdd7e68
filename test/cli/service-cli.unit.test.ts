// `weft service` and `weft token create --role` in-process against a real
// controller (TLS, the admin certificate made from the CA in --data-dir, as
// on the controller's machine): flags to requests, exit codes, output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { serviceCommand, servicesCommand, parsePortSpec, serviceFromFlags, serviceRows } from '../../controller/cli/service-commands';
import { tokenCommand } from '../../controller/cli/commands';
import { verifyToken } from '../../controller/pki/tokens';
import { type Cluster, type RunningController, startCluster } from '../agent/controller-fixture';
import { runCommand } from './run-command';

let cluster: Cluster;
let ctl: RunningController;

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
});
afterAll(async () => {
  await cluster?.close();
});

const run = runCommand;

const at = () => ['--server', ctl.address, '--data-dir', join(cluster.dir, 'ca')];

describe('flags', () => {
  it('reads port specs PORT[:TARGET][/tcp|udp|http]', () => {
    expect(parsePortSpec('80')).toEqual({ name: '', port: 80, target_port: 80, protocol: 'tcp' });
    expect(parsePortSpec('80:8080/http')).toEqual({ name: '', port: 80, target_port: 8080, protocol: 'http' });
    expect(parsePortSpec('53/udp')).toEqual({ name: '', port: 53, target_port: 53, protocol: 'udp' });
    expect(() => parsePortSpec('0')).toThrow(/^--port: "0": port 0 is not 1-65535/);
    expect(() => parsePortSpec('80:70000')).toThrow(/target port 70000/);
    expect(() => parsePortSpec('80/sctp')).toThrow(/protocol "sctp" is not one of tcp, udp, http/);
    expect(() => parsePortSpec('http')).toThrow(/^--port: "http" is not PORT\[:TARGET\]/);
  });

  it('names the flag of every bad value, before connecting', () => {
    const base = ['web', '--port', '80/http', '--selector', 'app=web'];
    const cases: Array<[string[], RegExp]> = [
      [['web', '--selector', 'app=web'], /^--port is required/],
      [['web', '--port', '80'], /^--selector is required/],
      [[...base, '--selector', 'app'], /^--selector: "app" is not key=value/],
      [[...base, '--selector', 'bad key=x'], /^--selector: service.selector: /],
      [[...base, '--hostname', 'Shop!'], /^--hostname: service.hostnames\[0\]: /],
      [[...base, '--path-prefix', 'api'], /^--path-prefix: service.path_prefix: /],
      [[...base, '--health-path', '/a/../b'], /^--health-path: /],
      [[...base, '--affinity', 'sticky'], /^--affinity: service.affinity: "sticky" is not an affinity/],
      [[...base, '--rack-policy', 'near'], /^--rack-policy: /],
      [[...base, '--port', '80/tcp'], /^--port: service.ports\[1\].port: tcp port 80 is already used/],
      [['web', '--port', '80', '--selector', 'app=web', '--hostname', 'a.example.com'], /^--hostname: .*only http ports/],
      [['Web', '--port', '80', '--selector', 'app=web'], /^NAME: service.name: /],
      [[...base, '--bogus'], /unknown flag --bogus/],
    ];
    for (const [argv, msg] of cases) expect(() => serviceFromFlags(argv), argv.join(' ')).toThrow(msg);
  });

  it('lays out the list with routes and backend counts', () => {
    const rows = serviceRows(
      [
        { name: 'shop', ports: [{ name: '', port: 80, target_port: 8080, protocol: 'http' }], selector: { app: 'shop' }, network: 'default', rack_policy: 'any', hostnames: ['shop.example.com'], path_prefix: '/api', affinity: 'client-ip', health_path: '', proxy_protocol: false },
        { name: 'dns', ports: [{ name: '', port: 53, target_port: 53, protocol: 'udp' }], selector: { app: 'dns' }, network: 'default', rack_policy: 'prefer-local', hostnames: [], path_prefix: '', affinity: 'none', health_path: '', proxy_protocol: false },
      ],
      new Map([['shop', [{ ip: '10.0.0.1', host: 'h', rack: '', datacenter: '', container_id: 'c' }]]]),
    );
    expect(rows).toEqual([
      ['NAME', 'PORTS', 'SELECTOR', 'NETWORK', 'RACK-POLICY', 'AFFINITY', 'ROUTE', 'BACKENDS'],
      ['shop', '80:8080/http', 'app=shop', 'default', 'any', 'client-ip', 'shop.example.com/api', '1'],
      ['dns', '53/udp', 'app=dns', 'default', 'prefer-local', 'none', '-', '0'],
    ]);
  });
});

describe('weft service against a controller', () => {
  it('creates, lists and deletes services', async () => {
    const created = await run(serviceCommand, [
      'create', 'shop', '--port', '80:8080/http', '--port', '53/udp', '--selector', 'app=shop,tier=fe', '--hostname', 'shop.example.com',
      '--hostname', '*.shop.example.com', '--path-prefix', '/api', '--health-path', '/healthz', '--affinity', 'client-ip', '--proxy-protocol',
      '--rack-policy', 'any', ...at(),
    ]);
    expect(created, created.err).toMatchObject({ code: 0, out: 'service shop: 80:8080/http, 53/udp -> app=shop,tier=fe in default\n' });
    const stored = (await cluster.store.range('/weft/services/shop')).kvs.map((kv) => JSON.parse(kv.value));
    expect(stored).toEqual([expect.objectContaining({
      hostnames: ['shop.example.com', '*.shop.example.com'], pathPrefix: '/api', healthPath: '/healthz', affinity: 'client-ip', proxyProtocol: true, rackPolicy: 'any',
    })]);

    const list = await run(servicesCommand, at());
    expect(list.code, list.err).toBe(0);
    const lines = list.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +PORTS +SELECTOR +NETWORK +RACK-POLICY +AFFINITY +ROUTE +BACKENDS$/);
    expect(lines[1].split(/ +/)).toEqual(['shop', '80:8080/http,53/udp', 'app=shop,tier=fe', 'default', 'any', 'client-ip', 'shop.example.com,*.shop.example.com/api', '0']);
    // aligned: every column starts at the same offset in every line
    expect(lines[1].indexOf('80:8080')).toBe(lines[0].indexOf('PORTS'));

    const json = await run(serviceCommand, ['list', '--json', ...at()]);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ name: 'shop', path_prefix: '/api', backends: [] })]);

    const clash = await run(serviceCommand, ['create', 'other', '--port', '53/udp', '--selector', 'app=o', ...at()]);
    expect(clash.code).toBe(1);
    expect(clash.err).toMatch(/ALREADY_EXISTS: service\.ports\[0\]\.port: udp port 53 is already used by service "shop"/);
    const noNet = await run(serviceCommand, ['create', 'other', '--port', '81', '--selector', 'app=o', '--network', 'nope', ...at()]);
    expect(noNet.code).toBe(2);
    expect(noNet.err).toMatch(/^weft service create: --network: service.network: network "nope" does not exist/);

    expect(await run(serviceCommand, ['delete', 'shop', ...at()])).toMatchObject({ code: 0, out: 'deleted service shop\n' });
    expect(await run(serviceCommand, ['delete', 'shop', ...at()])).toMatchObject({ code: 1, err: 'weft service delete: no service shop\n' });
    expect((await run(serviceCommand, ['list', ...at()])).out).toMatch(/^no services/);
  });

  it('exits 2 on usage mistakes and prints help', async () => {
    expect((await run(serviceCommand, ['create', 'web', '--port', '80/sctp', '--selector', 'a=b', ...at()])).code).toBe(2);
    expect((await run(serviceCommand, ['frob'])).code).toBe(2);
    expect((await run(serviceCommand, [])).code).toBe(2);
    const help = await run(serviceCommand, ['create', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--port PORT\[:TARGET\]\[\/tcp\|udp\|http\]/);
  });
});

describe('weft token create --role', () => {
  it('prints the ingress join line for an ingress token, and the agent line by default', async () => {
    const store = ['--data-dir', join(cluster.dir, 'ca'), '--store', `sqlite:${cluster.dbPath}`];
    const ingress = await run(tokenCommand, ['create', '--role', 'ingress', ...store]);
    expect(ingress.code, ingress.err).toBe(0);
    const m = /^weft ingress --server (\S+) --token (\S+) --ca-cert-hash (sha256:[0-9a-f]{64})\n$/.exec(ingress.out);
    expect(m, ingress.out).not.toBeNull();
    expect(m![3]).toBe(cluster.pin);
    expect(await verifyToken(cluster.store, m![2])).toMatchObject({ ok: true, role: 'ingress' });
    expect(ingress.err).toMatch(/join any number of ingresses/);

    const host = await run(tokenCommand, ['create', ...store]);
    expect(host.out).toMatch(/^weft agent --server \S+ --token \S+ --ca-cert-hash sha256:/);
    expect(await verifyToken(cluster.store, host.out.split(' ')[5])).toMatchObject({ ok: true, role: 'host' });

    const bad = await run(tokenCommand, ['create', '--role', 'admin', ...store]);
    expect(bad).toMatchObject({ code: 2, err: 'weft token create: --role: "admin" is not a role (host or ingress)\n' });
    const list = await run(tokenCommand, ['list', ...store]);
    expect(list.out.split('\n')[0]).toMatch(/^ID +ROLE +EXPIRES/);
    expect(list.out).toMatch(/ ingress /);
  });
});
