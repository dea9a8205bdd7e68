// parseRequest against the CNI spec's rules: each refusal carries the spec's
// code and names the field or variable; what is accepted comes out as the
// handlers will see it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  configVersion,
  DEFAULT_AGENT_SOCKET,
  parseCniArgs,
  parseCommand,
  parseRequest,
  parseResult,
} from '../../cni-plugin/cni/parse';
import { CNI_ERR, CniError, SUPPORTED_VERSIONS, type CniRequest } from '../../cni-plugin/cni/types';

const ADD = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/var/run/netns/cni-1', CNI_IFNAME: 'eth0' };
const base = { cniVersion: '1.1.0', name: 'weftnet', type: 'weft' };
const stdin = (o: Record<string, unknown>): string => JSON.stringify({ ...base, ...o });

/** The CniError parseRequest throws, or a failure if it throws none / something else. */
function refusal(env: Record<string, string | undefined>, input: string | Buffer): CniError {
  try {
    parseRequest(env, input);
  } catch (e) {
    if (e instanceof CniError) return e;
    throw e;
  }
  throw new Error('parseRequest accepted the request');
}

describe('commands and environment', () => {
  it('knows the six verbs and refuses others with code 4', () => {
    for (const c of ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION']) expect(parseCommand({ CNI_COMMAND: c })).toBe(c);
    for (const c of [undefined, '', 'add', 'DELETE']) {
      expect(() => parseCommand({ CNI_COMMAND: c })).toThrow(CniError);
      expect(refusal({ ...ADD, CNI_COMMAND: c }, stdin({})).cniCode).toBe(CNI_ERR.INVALID_ENV);
    }
  });

  it('requires per verb what the spec requires, naming the variable', () => {
    const required: Array<[string, string]> = [
      ['ADD', 'CNI_CONTAINERID'],
      ['ADD', 'CNI_NETNS'],
      ['ADD', 'CNI_IFNAME'],
      ['CHECK', 'CNI_CONTAINERID'],
      ['CHECK', 'CNI_NETNS'],
      ['CHECK', 'CNI_IFNAME'],
      ['DEL', 'CNI_CONTAINERID'],
      ['DEL', 'CNI_IFNAME'],
    ];
    for (const [command, v] of required) {
      const e = refusal({ ...ADD, CNI_COMMAND: command, [v]: undefined }, stdin({ prevResult: {} }));
      expect(e.cniCode, `${command} ${v}`).toBe(CNI_ERR.INVALID_ENV);
      expect(e.message).toBe(`${v} is required for ${command}`);
    }
  });

  it('lets DEL through without a netns (ctr run --cni) and without prevResult (after a failed ADD)', () => {
    const req = parseRequest({ ...ADD, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, stdin({}));
    expect(req).toMatchObject({ command: 'DEL', netns: '', containerId: 'ctr1', ifname: 'eth0' });
    expect(req.config.prevResult).toBeUndefined();
    expect(parseRequest({ ...ADD, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }, stdin({})).netns).toBe('');
  });

  it('needs nothing but the config for STATUS and GC', () => {
    expect(parseRequest({ CNI_COMMAND: 'STATUS' }, stdin({}))).toMatchObject({
      command: 'STATUS',
      containerId: '',
      netns: '',
      ifname: '',
      path: [],
    });
    const gc = parseRequest(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin::/usr/lib/cni' },
      stdin({ 'cni.dev/valid-attachments': [{ containerID: 'a1', ifname: 'eth0' }] }),
    );
    expect(gc.path).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(gc.config.validAttachments).toEqual([{ containerID: 'a1', ifname: 'eth0' }]);
  });

  it('refuses invalid container ids, interface names and netns paths with code 4', () => {
    const bad: Array<[string, string, RegExp]> = [
      ['CNI_CONTAINERID', '-abc', /^CNI_CONTAINERID "-abc" is invalid/],
      ['CNI_CONTAINERID', 'a b', /^CNI_CONTAINERID "a b"/],
      ['CNI_CONTAINERID', 'a/b', /^CNI_CONTAINERID "a\/b"/],
      ['CNI_IFNAME', 'x'.repeat(16), /15 bytes/],
      ['CNI_IFNAME', 'ééééééééé', /15 bytes/],
      ['CNI_IFNAME', '.', /"\." is invalid/],
      ['CNI_IFNAME', '..', /"\.\." is invalid/],
      ['CNI_IFNAME', 'a/b', /contains/],
      ['CNI_IFNAME', 'a:b', /contains/],
      ['CNI_IFNAME', 'a b', /contains/],
      ['CNI_NETNS', 'netns/x', /^CNI_NETNS "netns\/x" must be an absolute path/],
    ];
    for (const [v, value, msg] of bad) {
      const e = refusal({ ...ADD, [v]: value }, stdin({}));
      expect(e.cniCode, `${v}=${value}`).toBe(CNI_ERR.INVALID_ENV);
      expect(e.message).toMatch(msg);
    }
    expect(parseRequest({ ...ADD, CNI_IFNAME: 'x'.repeat(15), CNI_CONTAINERID: 'A1_b.c-d' }, stdin({})).ifname).toBe(
      'x'.repeat(15),
    );
  });

  it('parses CNI_ARGS as the runtimes send it', () => {
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;')).toEqual({
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: 'default',
      K8S_POD_NAME: 'web-0',
    });
    expect(parseCniArgs('')).toEqual({});
    expect(parseCniArgs(undefined)).toEqual({});
    expect(parseCniArgs('A=b=c;E=')).toEqual({ A: 'b=c', E: '' });
    for (const s of ['novalue', '=x', 'A=1;;B']) {
      expect(() => parseCniArgs(s), s).toThrow(/CNI_ARGS: invalid pair/);
    }
  });

  it('reads back any CNI_ARGS map written as K=V;...', () => {
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
    const value = fc.stringMatching(/^[^;]{0,20}$/);
    fc.assert(
      fc.property(fc.dictionary(key, value), (m) => {
        const s = Object.entries(m)
          .map(([k, v]) => `${k}=${v}`)
          .join(';');
        expect(parseCniArgs(s)).toEqual(m);
      }),
    );
  });
});

describe('the network configuration', () => {
  it('fills in weft defaults and keeps unknown keys in raw', () => {
    const req: CniRequest = parseRequest(
      ADD,
      stdin({ ipam: { type: 'host-local' }, capabilities: { portMappings: true }, args: { cni: { x: 1 } } }),
    );
    expect(req.config).toEqual({
      cniVersion: '1.1.0',
      name: 'weftnet',
      type: 'weft',
      network: 'default',
      agentSocket: DEFAULT_AGENT_SOCKET,
      raw: { ipam: { type: 'host-local' }, capabilities: { portMappings: true }, args: { cni: { x: 1 } } },
    });
  });

  it('takes network, agentSocket, mtu and runtimeConfig', () => {
    const c = parseRequest(
      ADD,
      stdin({ network: 'blue-2', agentSocket: '/run/w/a.sock', mtu: 68, runtimeConfig: { portMappings: [] } }),
    ).config;
    expect(c).toMatchObject({ network: 'blue-2', agentSocket: '/run/w/a.sock', mtu: 68, runtimeConfig: { portMappings: [] } });
    expect(parseRequest(ADD, stdin({ mtu: 65535 })).config.mtu).toBe(65535);
  });

  it('refuses each bad field with code 7 and its name', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: undefined }, /^name missing is invalid/],
      [{ name: '' }, /^name "" is invalid/],
      [{ name: '_net' }, /^name "_net" is invalid/],
      [{ name: 'a b' }, /^name "a b" is invalid/],
      [{ name: 7 }, /^name 7 is invalid/],
      [{ type: undefined }, /^type missing is invalid/],
      [{ type: 'bridge' }, /^type "bridge" is invalid \(must be "weft"\)/],
      [{ cniVersion: undefined }, /^cniVersion missing is invalid/],
      [{ cniVersion: 1.1 }, /^cniVersion 1.1 is invalid/],
      [{ cniVersion: '1.1' }, /^cniVersion "1.1" is invalid/],
      [{ network: 'Blue' }, /^network "Blue" is invalid/],
      [{ network: '' }, /^network "" is invalid/],
      [{ agentSocket: 'run/a.sock' }, /^agentSocket "run\/a.sock" is invalid/],
      [{ agentSocket: `/${'a'.repeat(107)}` }, /^agentSocket .* at most 107 bytes/],
      [{ mtu: 67 }, /^mtu 67 is invalid \(must be an integer between 68 and 65535\)/],
      [{ mtu: 65536 }, /^mtu 65536/],
      [{ mtu: 1500.5 }, /^mtu 1500.5/],
      [{ mtu: '1500' }, /^mtu "1500"/],
      [{ runtimeConfig: [] }, /^runtimeConfig must be an object/],
    ];
    for (const [o, msg] of cases) {
      const e = refusal(ADD, stdin(o));
      expect(e.cniCode, msg.source).toBe(CNI_ERR.INVALID_CONFIG);
      expect(e.message).toMatch(msg);
    }
  });

  it('refuses what is not JSON, or not an object, with code 6', () => {
    for (const s of ['', '{', 'null', '[]', '"x"', Buffer.from([0xff, 0xfe])]) {
      expect(refusal(ADD, s).cniCode, String(s)).toBe(CNI_ERR.DECODE_FAILURE);
    }
  });

  it('refuses versions it does not speak with code 1, and verbs newer than the config', () => {
    for (const v of ['0.1.0', '0.2.0', '1.2.0', '2.0.0']) {
      const e = refusal(ADD, stdin({ cniVersion: v }));
      expect(e.cniCode, v).toBe(CNI_ERR.INCOMPATIBLE_VERSION);
      expect(e.message).toContain(v);
    }
    for (const v of SUPPORTED_VERSIONS) expect(parseRequest(ADD, stdin({ cniVersion: v })).config.cniVersion).toBe(v);
    const tooOld: Array<[string, string, Record<string, unknown>]> = [
      ['CHECK', '0.3.1', { prevResult: {} }],
      ['STATUS', '1.0.0', {}],
      ['GC', '1.0.0', { 'cni.dev/valid-attachments': [] }],
    ];
    for (const [command, v, extra] of tooOld) {
      const e = refusal({ ...ADD, CNI_COMMAND: command }, stdin({ cniVersion: v, ...extra }));
      expect(e.cniCode, command).toBe(CNI_ERR.INCOMPATIBLE_VERSION);
    }
  });

  it('requires prevResult for CHECK', () => {
    const e = refusal({ ...ADD, CNI_COMMAND: 'CHECK' }, stdin({}));
    expect([e.cniCode, e.message]).toEqual([CNI_ERR.INVALID_CONFIG, 'prevResult is required for CHECK']);
  });

  it('requires the attachment list for GC, under either of the names libcni sends', () => {
    expect(refusal({ CNI_COMMAND: 'GC' }, stdin({})).message).toBe('cni.dev/valid-attachments is required for GC');
    const old = parseRequest({ CNI_COMMAND: 'GC' }, stdin({ 'cni.dev/attachments': [{ containerID: 'c', ifname: 'e' }] }));
    expect(old.config.validAttachments).toEqual([{ containerID: 'c', ifname: 'e' }]);
    expect(parseRequest({ CNI_COMMAND: 'GC' }, stdin({ 'cni.dev/valid-attachments': [] })).config.validAttachments).toEqual([]);
    const bad = refusal({ CNI_COMMAND: 'GC' }, stdin({ 'cni.dev/valid-attachments': [{ containerID: 'c' }] }));
    expect([bad.cniCode, bad.message]).toEqual([CNI_ERR.INVALID_CONFIG, 'cni.dev/valid-attachments[0].ifname is required']);
  });

  it('labels errors with the config version when it can read one', () => {
    expect(configVersion('{"cniVersion":"0.4.0"}')).toBe('0.4.0');
    expect(configVersion('{"cniVersion":')).toBe('1.1.0');
    expect(configVersion('{"cniVersion":"bogus\\n"}')).toBe('1.1.0');
    expect(configVersion('null')).toBe('1.1.0');
  });
});

describe('prevResult', () => {
  it('accepts the 0.4.0 shape and gives the 1.x shape', () => {
    const r = parseResult(
      {
        cniVersion: '0.4.0',
        interfaces: [{ name: 'weft.br1' }, { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
        ips: [
          { version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
          { version: '6', address: 'fd00::5/64', interface: 1 },
        ],
        routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
        dns: {},
      },
      'prevResult',
      '0.4.0',
    );
    expect(r).toEqual({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'weft.br1' }, { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
      ips: [
        { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
        { address: 'fd00::5/64', interface: 1 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
    });
  });

  it('takes the config version when the result has none, and reaches the request', () => {
    const req = parseRequest({ ...ADD, CNI_COMMAND: 'DEL' }, stdin({ cniVersion: '1.0.0', prevResult: { ips: [] } }));
    expect(req.config.prevResult).toEqual({ cniVersion: '1.0.0' });
  });

  it('refuses a malformed one with code 7 naming the path', () => {
    const cases: Array<[unknown, string]> = [
      [[], 'prevResult must be an object'],
      [{ ips: {} }, 'prevResult.ips must be a list'],
      [{ ips: [{ address: '10.1.0.5' }] }, 'prevResult.ips[0].address "10.1.0.5" is not an address with prefix length'],
      [{ ips: [{ address: '10.1.0.5/33' }] }, 'prevResult.ips[0].address "10.1.0.5/33"'],
      [{ ips: [{ address: '10.1.0.5/24', gateway: 'gw' }] }, 'prevResult.ips[0].gateway "gw" is not an IP address'],
      [{ ips: [{ address: '10.1.0.5/24', interface: 0 }] }, 'prevResult.ips[0].interface 0 refers to no interface'],
      [{ interfaces: [{ name: 'a' }], ips: [{ address: '10.1.0.5/24', interface: 1 }] }, 'prevResult.ips[0].interface 1'],
      [{ interfaces: [{ mac: 'x' }] }, 'prevResult.interfaces[0].name is required'],
      [{ routes: [{ dst: 'default' }] }, 'prevResult.routes[0].dst "default"'],
      [{ dns: { nameservers: 'x' } }, 'prevResult.dns.nameservers must be a list'],
      [{ cniVersion: '9.9.9' }, 'incompatible CNI version "9.9.9"'],
    ];
    for (const [prevResult, msg] of cases) {
      const e = refusal({ ...ADD, CNI_COMMAND: 'DEL' }, stdin({ prevResult }));
      expect(e.message).toContain(msg);
      expect(e.cniCode).toBe(msg.startsWith('incompatible') ? CNI_ERR.INCOMPATIBLE_VERSION : CNI_ERR.INVALID_CONFIG);
    }
  });
});
