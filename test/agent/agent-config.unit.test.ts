// The agent's settings: precedence of flags over WEFT_* over the JSON file,
// errors that name their source, durations and the VTEP MAC. The underlay
// default, which asks the kernel, is in agent-config.test.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_DEFAULTS, loadAgentConfig } from '../../cni-plugin/agent/config';
import { parseDurationMs } from '../../controller/common/config-sources';
import { configErrorOf } from '../helpers/config-error';
import { DEFAULT_AGENT_SOCKET } from '../../cni-plugin/cni/parse';
import { vtepMacFor } from '../../cni-plugin/agent/main';

const PIN = 'sha256:' + 'ab'.repeat(32);
const TOKEN = 'abcdef.0123456789abcdef';
const machine = () => 'node-1';

describe('loadAgentConfig', () => {
  it('fills defaults around the required server', () => {
    const c = loadAgentConfig(['--server', '10.0.0.1:7443'], {}, { machineHostname: machine });
    expect(c).toMatchObject({
      server: '10.0.0.1:7443', hostName: 'node-1', rack: '', datacenter: '', networks: [],
      stateDir: '/var/lib/weft/agent', cniSocket: '/run/weft/agent.sock', metricsListen: { host: '127.0.0.1', port: 7081 },
      resyncIntervalMs: 60_000, logLevel: 'info',
    });
    expect(c.underlayIp).toBeUndefined();
    expect(c.mtu).toBeUndefined();
  });

  it('takes flags over WEFT_* over the config file', () => {
    const file = JSON.stringify({ server: 'ctl.example:7443', rack: 'r-file', datacenter: 'dc-file', networks: ['a', 'b'], mtu: '1400', token: TOKEN });
    const c = loadAgentConfig(
      ['--config', '/x.json', '--rack', 'r-flag', '--ca-cert-hash', PIN.toUpperCase().replace('SHA256', 'sha256')],
      { WEFT_RACK: 'r-env', WEFT_DATACENTER: 'dc-env', WEFT_RESYNC_INTERVAL: '5m', WEFT_HOST_NAME: 'h7' },
      { readFile: () => file, machineHostname: machine },
    );
    expect(c).toMatchObject({
      server: 'ctl.example:7443', rack: 'r-flag', datacenter: 'dc-env', networks: ['a', 'b'], mtu: 1400, token: TOKEN,
      caCertHash: PIN, hostName: 'h7', resyncIntervalMs: 300_000, configFile: '/x.json',
    });
  });

  it('names the source of each bad value', () => {
    expect(configErrorOf(() => loadAgentConfig([], {}))).toMatch(/^--server is required/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:0'], {}))).toMatch(/^--server: "x:0"/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--token', 'secret-value'], {}))).toBe(
      '--token: the value is not a bootstrap token <6 chars>.<16 chars> from weft token create',
    );
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1'], { WEFT_CA_CERT_HASH: 'md5:00' }))).toMatch(/^WEFT_CA_CERT_HASH: "md5:00"/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--underlay-ip', '10.0.0'], {}))).toMatch(/^--underlay-ip/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--networks', 'a,,b'], {}))).toMatch(/^--networks: "a,,b" has an empty entry/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--networks', 'A'], {}))).toMatch(/^--networks: "A" is not a valid name/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--state-dir', 'rel/dir'], {}))).toMatch(/^--state-dir: "rel\/dir" is not an absolute/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--cni-socket', '/' + 'a'.repeat(107)], {}))).toMatch(/^--cni-socket/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--mtu', '1279'], {}))).toMatch(/^--mtu: "1279"/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--resync-interval', '500ms'], {}))).toMatch(/^--resync-interval/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--log-level', 'loud'], {}))).toMatch(/^--log-level: "loud" is not a log level/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--ca-cert', '/nope'], {}, { readFile: () => { throw new Error('ENOENT'); } }))).toMatch(/^--ca-cert: cannot read \/nope/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1'], {}, { machineHostname: () => 'Laptop.local' }))).toMatch(/^the machine's hostname \(set --host-name\): "Laptop.local"/);
    expect(configErrorOf(() => loadAgentConfig(['--server', 'x:1', '--host-name', 'admin'], {}))).toMatch(/reserved/);
    expect(configErrorOf(() => loadAgentConfig(['--config', '/c.json'], {}, { readFile: () => '{"server":"x:1","colour":"red"}' }))).toMatch(/unknown key "colour"/);
  });

  it('listens by default where the plugin (TypeScript parser and C shim) looks by default', () => {
    expect(AGENT_DEFAULTS.cniSocket).toBe(DEFAULT_AGENT_SOCKET);
    expect(readFileSync(new URL('../../cni-plugin/shim/weft.c', import.meta.url), 'utf8')).toContain(`#define DEFAULT_SOCKET "${AGENT_DEFAULTS.cniSocket}"`);
  });

  it('parses durations', () => {
    expect([parseDurationMs('90'), parseDurationMs('2s'), parseDurationMs('5m'), parseDurationMs('1h'), parseDurationMs('1.5s')]).toEqual([90_000, 2000, 300_000, 3_600_000, undefined]);
  });

  it('derives a stable, locally administered unicast VTEP MAC from the host name', () => {
    const a = vtepMacFor('h1');
    expect(a).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(vtepMacFor('h1')).toBe(a);
    expect(vtepMacFor('h2')).not.toBe(a);
    expect(parseInt(a.slice(0, 2), 16) & 0x03).toBe(0x02);
    // pinned: a new derivation would make every other host rewrite its FDB and neighbour entries on upgrade
    expect([a, vtepMacFor('Node-A')]).toEqual(['7a:0c:0e:95:f4:f3', '42:28:32:ea:c4:86']);
  });
});

describe('--vtep-mac', () => {
  const base = ['--server', '10.0.0.1:7443', '--host-name', 'h1'];

  it('is unset by default (derived from the host name) and taken lower-cased when given', () => {
    expect(loadAgentConfig(base, {}).vtepMac).toBeUndefined();
    expect(loadAgentConfig([...base, '--vtep-mac', '02:AB:00:00:00:01'], {}).vtepMac).toBe('02:ab:00:00:00:01');
  });

  it.each(['01:00:5e:00:00:01', '00:00:00:00:00:00', 'zz:00:00:00:00:01', '02:00:00:00:00'])('refuses %s, naming the flag', (mac) => {
    expect(() => loadAgentConfig([...base, '--vtep-mac', mac], {})).toThrow(/--vtep-mac.* is not a unicast MAC address/);
  });
});
