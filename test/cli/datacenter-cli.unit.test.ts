// `weft datacenter` in-process against a real controller (TLS, the admin
// certificate made from the CA in --data-dir, as on the controller's
// machine): flags to requests, every bad flag refused before connecting,
// exit codes, the aligned list and its JSON.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  datacenterCommand, datacenterFromFlags, datacenterRows, datacentersCommand, flagOfDatacenterField,
} from '../../controller/cli/datacenter-commands';
import { putHost } from '../../controller/registry/hosts';
import { type Cluster, type RunningController, startCluster } from '../agent/controller-fixture';
import { runCommand } from './run-command';

let cluster: Cluster;
let ctl: RunningController;

const key = (n: number) => Buffer.alloc(32, n).toString('base64');

beforeAll(async () => {
  cluster = await startCluster();
  ctl = await cluster.startController();
  // registered hosts, as their agents would leave them: h7-h9 in dc2, h1 in dc1
  for (const [name, n, dc] of [['h7', 7, 'dc2'], ['h8', 8, 'dc2'], ['h9', 9, 'dc2'], ['h1', 1, 'dc1']] as const) {
    await putHost(cluster.store, {
      name, underlayIp: `192.168.1.${n}`, vtepMac: `02:00:00:00:00:0${n}`, rack: 'r1', datacenter: dc, wgPublicKey: key(n), agentVersion: 'test', lastHeartbeat: Date.now(),
    });
  }
});
afterAll(async () => {
  await cluster?.close();
});

const run = runCommand;

const at = () => ['--server', ctl.address, '--data-dir', join(cluster.dir, 'ca')];

describe('flags', () => {
  it('turns add flags into the request', () => {
    const { request } = datacenterFromFlags(['dc2', '--gateways', 'h7,h8', '--wan', 'h7=203.0.113.7:51820', '--wan', 'h8=[2001:DB8::8]:4500', '--listen-port', '4500', '--mtu', '1380', '--mesh']);
    expect(request).toEqual({
      name: 'dc2', listen_port: 4500, mtu: 1380, mesh: true, allow_single_gateway: false,
      gateways: [{ host: 'h7', wan_endpoint: '203.0.113.7:51820' }, { host: 'h8', wan_endpoint: '[2001:DB8::8]:4500' }],
    });
    expect(datacenterFromFlags(['dc2', '--gateways', 'h7', '--allow-single-gateway']).request).toMatchObject({ gateways: [{ host: 'h7', wan_endpoint: '' }], allow_single_gateway: true, listen_port: 0, mtu: 0 });
  });

  it('names the flag of every bad value, before connecting', () => {
    const base = ['dc2', '--gateways', 'h7,h8'];
    const cases: Array<[string[], RegExp]> = [
      [['dc2'], /^--gateways is required/],
      [['--gateways', 'h7,h8'], /^give the name of the datacenter/],
      [['DC2', '--gateways', 'h7,h8'], /^DC: name: "DC2" is not a valid name/],
      [['dc2', '--gateways', 'h7,H8!'], /^--gateways: gateways\[1\]\.host: /],
      [['dc2', '--gateways', 'h7,h7'], /^--gateways: gateways\[1\]\.host: "h7" is already gateways\[0\]/],
      [['dc2', '--gateways', 'admin,h7'], /^--gateways: gateways\[0\]\.host: "admin" is reserved/],
      [[...base, '--wan', '203.0.113.7:51820'], /^--wan: "203.0.113.7:51820" is not HOST=IP:PORT/],
      [[...base, '--wan', 'h9=203.0.113.9:51820'], /^--wan: "h9" is not one of --gateways \(h7, h8\)/],
      [[...base, '--wan', 'h7=1.2.3.4:1,h7=1.2.3.5:1'], /^--wan: host "h7" given twice/],
      [[...base, '--wan', 'h7='], /^--wan: "h7=" has no endpoint/],
      [['dc2', '--gateways', 'h7,,h8'], /^--gateways: /],
      [[...base, '--wan', 'h7=127.0.0.1:51820'], /^--wan: gateways\[0\]\.wan_endpoint: .*loopback/],
      [[...base, '--wan', 'h7=224.1.1.1:51820'], /^--wan: .*multicast/],
      [[...base, '--wan', 'h7=169.254.9.9:51820'], /^--wan: .*link-local/],
      [[...base, '--wan', 'h7=0.0.0.0:51820'], /^--wan: .*unspecified/],
      [[...base, '--wan', 'h7=203.0.113.7:99999'], /^--wan: .*port 99999 is not 1-65535/],
      [[...base, '--wan', 'h7=2001:db8::7:51820'], /^--wan: .*in brackets/],
      [[...base, '--listen-port', '0x10'], /^--listen-port: "0x10" is not a whole number/],
      [[...base, '--listen-port', '70000'], /^--listen-port: listen_port: 70000 is not a port/],
      [[...base, '--mtu', '-1'], /^--mtu: "-1" is not a whole number/],
      [[...base, '--mtu', '576'], /^--mtu: mtu: 576 is not an MTU/],
      [[...base, '--mesh=maybe'], /--mesh/],
      [[...base, '--bogus'], /unknown flag --bogus/],
    ];
    for (const [argv, msg] of cases) expect(() => datacenterFromFlags(argv), argv.join(' ')).toThrow(msg);
  });

  it('maps request fields to flags', () => {
    expect(flagOfDatacenterField('gateways[3].wan_endpoint')).toBe('--wan');
    expect(flagOfDatacenterField('gateways[0].host')).toBe('--gateways');
    expect(flagOfDatacenterField('wan_endpoint')).toBe('--wan');
    expect(flagOfDatacenterField('datacenter')).toBe('DC');
    expect(flagOfDatacenterField('host')).toBe('HOST');
    expect(flagOfDatacenterField('listen_port')).toBe('--listen-port');
  });

  it('lays out one row per gateway, and the datacenters without a record', () => {
    const rows = datacenterRows({
      datacenters: [{
        name: 'dc2', listen_port: 51820, mtu: 0, mesh: true, allow_single_gateway: false, host_count: 3, subnets: [], pools: {},
        gateways: [
          { host: 'h7', wan_endpoint: '203.0.113.7:51820', state: 'active', wg_public_key: key(7) },
          { host: 'h8', wan_endpoint: '192.168.1.8:51820', state: 'draining', wg_public_key: '' },
        ],
      }],
      undeclared: { dc1: 1 },
    });
    expect(rows).toEqual([
      ['DATACENTER', 'HOSTS', 'PORT', 'MTU', 'MESH', 'GATEWAY', 'STATE', 'WAN-ENDPOINT', 'KEY'],
      ['dc2', '3', '51820', 'auto', 'yes', 'h7', 'active', '203.0.113.7:51820', key(7).slice(0, 8)],
      ['', '', '', '', '', 'h8', 'draining', '192.168.1.8:51820', 'missing'],
      ['dc1', '1', '-', '-', '-', '(no record: weft datacenter add)', '', '', ''],
    ]);
  });
});

describe('weft datacenter against a controller', () => {
  it('adds, lists, changes gateways and deletes', async () => {
    const added = await run(datacenterCommand, ['add', 'dc2', '--gateways', 'h7,h8', '--wan', 'h7=203.0.113.7:51820', '--mesh', ...at()]);
    expect(added, added.err).toMatchObject({ code: 0, out: 'added datacenter dc2: gateways h7 203.0.113.7:51820, h8 192.168.1.8:51820; WireGuard port 51820, mesh\n' });

    const list = await run(datacentersCommand, at());
    expect(list.code, list.err).toBe(0);
    const lines = list.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DATACENTER +HOSTS +PORT +MTU +MESH +GATEWAY +STATE +WAN-ENDPOINT +KEY +PEERS \(LAST HANDSHAKE\)$/);
    // the key's first 8 characters; no agent has reported tunnels here
    expect(lines[1].split(/ {2,}/)).toEqual(['dc2', '3', '51820', 'auto', 'yes', 'h7', 'active', '203.0.113.7:51820', key(7).slice(0, 8), 'no report']);
    expect(lines[2].trim().split(/ {2,}/)).toEqual(['h8', 'active', '192.168.1.8:51820', key(8).slice(0, 8), 'no report']);
    // aligned: every column starts at the same offset in every line
    expect(lines[1].indexOf('h7')).toBe(lines[0].indexOf('GATEWAY'));
    expect(lines[2].indexOf('h8')).toBe(lines[0].indexOf('GATEWAY'));
    expect(lines[3]).toMatch(/^dc1 +1 /);

    const json = JSON.parse((await run(datacenterCommand, ['list', '--json', ...at()])).out);
    expect(json.undeclared).toEqual({ dc1: 1 });
    expect(json.datacenters[0]).toMatchObject({ name: 'dc2', host_count: 3, mesh: true, gateways: [{ host: 'h7', wg_public_key: key(7) }, { host: 'h8' }] });

    expect(await run(datacenterCommand, ['gateway', 'drain', 'dc2', 'h7', ...at()])).toMatchObject({
      code: 0, out: 'h7: draining in datacenter dc2; gateways: h7 203.0.113.7:51820 (draining), h8 192.168.1.8:51820\n',
    });
    const lastActive = await run(datacenterCommand, ['gateway', 'drain', 'dc2', 'h8', ...at()]);
    expect(lastActive.code).toBe(1);
    expect(lastActive.err).toMatch(/^weft datacenter gateway drain: .*FAILED_PRECONDITION: host: datacenter "dc2" would have no active gateway/);
    expect(await run(datacenterCommand, ['gateway', 'add', 'dc2', 'h9', '--wan', '198.51.100.9:51820', ...at()])).toMatchObject({ code: 0 });
    expect(await run(datacenterCommand, ['gateway', 'remove', 'dc2', 'h7', ...at()])).toMatchObject({
      code: 0, out: 'h7: no longer a gateway of datacenter dc2; gateways: h8 192.168.1.8:51820, h9 198.51.100.9:51820\n',
    });
    const wrongDc = await run(datacenterCommand, ['gateway', 'add', 'dc2', 'h1', ...at()]);
    expect(wrongDc.code).toBe(1);
    expect(wrongDc.err).toMatch(/host "h1" is in datacenter "dc1", not "dc2"/);
    const overlay = await run(datacenterCommand, ['gateway', 'add', 'dc2', 'h7', '--wan', '10.244.1.1:51820', ...at()]);
    expect(overlay.code).toBe(2);
    expect(overlay.err).toMatch(/^weft datacenter gateway add: --wan: wan_endpoint: "10.244.1.1:51820" is inside weft network "default"/);

    const again = await run(datacenterCommand, ['add', 'dc2', '--gateways', 'h7,h8', ...at()]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/ALREADY_EXISTS: datacenter "dc2" already exists/);

    const busy = await run(datacenterCommand, ['delete', 'dc2', ...at()]);
    expect(busy.code).toBe(1);
    expect(busy.err).toMatch(/datacenter "dc2" still has 3 registered hosts \(h7, h8, h9\).*delete with force/);
    expect(await run(datacenterCommand, ['delete', 'dc2', '--force', ...at()])).toMatchObject({ code: 0, out: 'deleted datacenter dc2\n' });
    expect(await run(datacenterCommand, ['delete', 'dc2', ...at()])).toMatchObject({ code: 1, err: 'weft datacenter delete: no datacenter dc2\n' });
  });

  it('exits 2 on usage mistakes and prints help', async () => {
    const cases: string[][] = [
      ['frob'],
      [],
      ['gateway', 'frob', 'dc2', 'h7'],
      ['gateway', 'add', 'dc2'],
      ['gateway', 'drain', 'dc2', 'h7', '--wan', '203.0.113.7:1'],
      ['gateway', 'add', 'dc2', 'H7!'],
      ['gateway', 'add', 'dc2', 'h7', '--wan', 'nope'],
      ['delete'],
      ['delete', 'Bad_Name'],
      ['add', 'dc9', '--gateways', 'h7,h8', '--mtu', 'big'],
    ];
    for (const argv of cases) {
      const r = await run(datacenterCommand, [...argv, ...(argv.length > 1 ? at() : [])]);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(2);
    }
    expect((await cluster.store.range('/weft/datacenters/')).kvs).toEqual([]);
    const help = await run(datacenterCommand, ['add', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--gateways HOST,HOST \[--wan HOST=IP:PORT \.\.\.\]/);
  });
});
