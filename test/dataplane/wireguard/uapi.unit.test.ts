// The UAPI client against a fake device: a unix socket server in a temporary
// directory that answers whatever the test wants, so garbled, hostile, cut and
// silent replies can be produced on demand. No root, no wireguard-go.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireGuardProtocolError, WireGuardUapiError } from '../../../dataplane/wireguard/errors';
import { generateKeyPair, keyFingerprint, keyToHex, publicKeyOf } from '../../../dataplane/wireguard/types';
import { createUapiClient, encodeSetBody, parseGetReply, uapiExchange } from '../../../dataplane/wireguard/uapi';

const dev = generateKeyPair();
const peer = generateKeyPair();
const psk = generateKeyPair().privateKey;
const hex = (k: string) => keyToHex(k, 'k');

/** Every form a secret could leak in. */
const secretForms = [dev.privateKey, hex(dev.privateKey), psk, hex(psk)];
function expectNoSecret(text: string): void {
  for (const s of secretForms) expect(text).not.toContain(s);
}

let dir: string;
let server: Server;
let answer: (request: string, sock: Socket) => void = () => {};
const requests: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-uapi-'));
  server = createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      // a request is complete at its blank line
      if (buf.endsWith('\n\n')) {
        requests.push(buf);
        answer(buf, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(join(dir, 'wtfake.sock'), r));
});

afterAll(async () => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = (timeoutMs = 2000) => createUapiClient({ name: 'wtfake', socketPath: join(dir, 'wtfake.sock'), timeoutMs });

async function getWith(reply: string | Buffer): Promise<unknown> {
  answer = (_req, sock) => sock.end(reply);
  try {
    return await client().get();
  } catch (e) {
    return e;
  }
}

const GOOD = [
  `private_key=${hex(dev.privateKey)}`,
  'listen_port=51820',
  'fwmark=7',
  `public_key=${hex(peer.publicKey)}`,
  `preshared_key=${hex(psk)}`,
  'protocol_version=1',
  'endpoint=[fd00::1]:51821',
  'last_handshake_time_sec=1700000000',
  'last_handshake_time_nsec=250000000',
  'tx_bytes=1234',
  'rx_bytes=18446744073709551615',
  'persistent_keepalive_interval=25',
  'allowed_ip=10.1.0.0/16',
  'allowed_ip=fd00:0:0:0::/64',
  'errno=0',
  '',
  '',
].join('\n');

describe('UAPI get', () => {
  it('reads device and peer fields as wireguard-go prints them, keeping no secret: the public key and a fingerprint stand in', async () => {
    const s = (await getWith(GOOD)) as any;
    expect(s).toEqual({
      publicKey: dev.publicKey,
      listenPort: 51820,
      fwmark: 7,
      peers: [
        {
          publicKey: peer.publicKey,
          presharedKeyFingerprint: keyFingerprint(psk),
          endpoint: '[fd00::1]:51821',
          lastHandshakeMs: 1700000000250,
          txBytes: 1234n,
          rxBytes: 18446744073709551615n,
          persistentKeepalive: 25,
          allowedIps: ['10.1.0.0/16', 'fd00::/64'],
        },
      ],
    });
    expectNoSecret(JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    expect(requests.at(-1)).toBe('get=1\n\n');
  });

  it('an all-zero preshared key is none, and a well-formed unknown field is skipped', async () => {
    const s = (await getWith(`public_key=${hex(peer.publicKey)}\npreshared_key=${'0'.repeat(64)}\nnew_field_from_the_future=1\nerrno=0\n\n`)) as any;
    expect(s.peers[0].presharedKeyFingerprint).toBeUndefined();
    expect(s.peers[0].publicKey).toBe(peer.publicKey);
  });

  const garbled: Array<[string, string | Buffer, RegExp]> = [
    ['a line that is not key=value', 'hello world\nerrno=0\n\n', /line 1 is not key=value/],
    ['no errno line', 'listen_port=1\n\n', /does not end with an errno line/],
    ['a reply that starts blank', '\n\n', /starts with a blank line/],
    ['a private key that is not hex', `private_key=${'z'.repeat(64)}\nerrno=0\n\n`, /line 1: private_key is not 64 lower-case hex digits/],
    ['a private key one digit short', `private_key=${hex(dev.privateKey).slice(1)}\nerrno=0\n\n`, /private_key is not 64/],
    ['a port out of range', 'listen_port=70000\nerrno=0\n\n', /listen_port "70000" is not a whole number up to 65535/],
    ['a peer field before any peer', 'allowed_ip=10.0.0.0/8\nerrno=0\n\n', /peer field allowed_ip before any public_key/],
    ['a device field after a peer', `public_key=${hex(peer.publicKey)}\nlisten_port=1\nerrno=0\n\n`, /device field listen_port after the first peer/],
    ['a repeated device field', 'fwmark=1\nfwmark=2\nerrno=0\n\n', /fwmark appears twice/],
    ['a repeated peer', `public_key=${hex(peer.publicKey)}\npublic_key=${hex(peer.publicKey)}\nerrno=0\n\n`, /appears twice/],
    ['a bad allowed IP', `public_key=${hex(peer.publicKey)}\nallowed_ip=999.1.1.1/33\nerrno=0\n\n`, /allowed_ip "999.1.1.1\/33" is not a CIDR/],
    ['a hostname endpoint', `public_key=${hex(peer.publicKey)}\nendpoint=evil.example:1\nerrno=0\n\n`, /endpoint "evil.example:1" is not ADDRESS:PORT/],
    ['a byte count that is not a number', `public_key=${hex(peer.publicKey)}\nrx_bytes=-1\nerrno=0\n\n`, /rx_bytes "-1" is not a 64-bit count/],
    ['a protocol version other than 1', `public_key=${hex(peer.publicKey)}\nprotocol_version=2\nerrno=0\n\n`, /protocol_version "2" is not 1/],
    ['binary garbage', Buffer.from([0x70, 0x00, 0xff, 0x3d, 0x0a, 0x0a]), /line 1 is not key=value in printable ASCII/],
    ['a non-numeric errno', 'errno=x\n\n', /errno value "x" is not a number/],
    ['an errno in the middle', 'errno=0\nlisten_port=1\nerrno=0\n\n', /errno before the end/],
    ['bytes after the end', 'errno=0\n\nlisten_port=1\n', /bytes after the end of the reply/],
    ['a reply cut short', 'listen_port=1\nerrno=0\n', /connection closed after \d+ bytes, before the reply ended/],
    ['no reply at all', '', /connection closed without a reply/],
  ];
  for (const [what, reply, message] of garbled) {
    it(`refuses ${what} with a clear protocol error`, async () => {
      const e = await getWith(reply);
      expect(e).toBeInstanceOf(WireGuardProtocolError);
      expect((e as WireGuardProtocolError).code).toBe('WEFT_WIREGUARD_PROTOCOL');
      expect((e as Error).message).toMatch(message);
      expect((e as Error).message).toMatch(/^wireguard wtfake: get: /);
      expectNoSecret((e as Error).message);
    });
  }

  it('a line holding a secret in a garbled form is never echoed', async () => {
    const e = (await getWith(`private_key=${hex(dev.privateKey)}\n${dev.privateKey} oops\nerrno=0\n\n`)) as Error;
    expect(e).toBeInstanceOf(WireGuardProtocolError);
    expectNoSecret(e.message);
  });

  it('an errno reply is a typed error with the errno name', async () => {
    const e = await getWith('errno=-22\n\n');
    expect(e).toBeInstanceOf(WireGuardUapiError);
    expect((e as WireGuardUapiError).code).toBe('EINVAL');
  });

  it('a device that never answers times out (ETIMEDOUT), and one that answers too much is cut off', async () => {
    answer = () => {};
    const t0 = Date.now();
    const e = await client(200).get().catch((x) => x);
    expect(e).toBeInstanceOf(WireGuardUapiError);
    expect(e.code).toBe('ETIMEDOUT');
    expect(Date.now() - t0).toBeLessThan(2000);
    answer = (_r, sock) => sock.write('listen_port=1\n'.repeat(2000));
    const big = await uapiExchange(join(dir, 'wtfake.sock'), 'get=1\n\n', { name: 'wtfake', op: 'get', timeoutMs: 2000, maxBytes: 10_000 }).catch((x) => x);
    expect(big).toBeInstanceOf(WireGuardProtocolError);
    expect(big.message).toMatch(/reply longer than 10000 bytes/);
  });

  it('no socket is ENOENT, naming the path', async () => {
    const e = await createUapiClient({ name: 'wtnone', socketPath: join(dir, 'none.sock') }).get().catch((x) => x);
    expect(e).toBeInstanceOf(WireGuardUapiError);
    expect(e.code).toBe('ENOENT');
    expect(e.message).toContain('none.sock');
  });
});

describe('UAPI set', () => {
  it('sends the minimal lines: update_only first, replace_allowed_ips only with allowed IPs, no replace_peers unless asked', async () => {
    answer = (_req, sock) => sock.end('errno=0\n\n');
    await client().set({
      peers: [
        { publicKey: peer.publicKey, updateOnly: true, endpoint: '192.0.2.1:51820' },
        { publicKey: generateKeyPair().publicKey, remove: true },
      ],
    });
    const req = requests.at(-1)!;
    expect(req).toMatch(new RegExp(`^set=1\\npublic_key=${hex(peer.publicKey)}\\nupdate_only=true\\nendpoint=192.0.2.1:51820\\npublic_key=[0-9a-f]{64}\\nremove=true\\n\\n$`));
    expect(req).not.toContain('replace_peers');
    expect(req).not.toContain('replace_allowed_ips');
  });

  it('encodes every field, clears a preshared key with zeros, and sends nothing for an empty update', async () => {
    const body = encodeSetBody({
      privateKey: dev.privateKey,
      listenPort: 51820,
      fwmark: 0,
      replacePeers: true,
      peers: [{ publicKey: peer.publicKey, presharedKey: null, persistentKeepalive: 0, allowedIps: ['10.0.0.1/8', 'FD00::1/64'] }],
    });
    expect(body).toBe(
      [
        `private_key=${hex(dev.privateKey)}`, 'listen_port=51820', 'fwmark=0', 'replace_peers=true', `public_key=${hex(peer.publicKey)}`,
        `preshared_key=${'0'.repeat(64)}`, 'persistent_keepalive_interval=0', 'replace_allowed_ips=true', 'allowed_ip=10.0.0.0/8', 'allowed_ip=fd00::/64', '',
      ].join('\n'),
    );
    const before = requests.length;
    await client().set({ peers: [] });
    expect(requests.length).toBe(before);
  });

  it('a refused set is a typed error; bad input is refused before anything is sent, naming the field but not the key', async () => {
    answer = (_req, sock) => sock.end('errno=-98\n\n');
    const e = await client().set({ listenPort: 1, peers: [] }).catch((x) => x);
    expect(e).toBeInstanceOf(WireGuardUapiError);
    expect(e.code).toBe('EADDRINUSE');
    const before = requests.length;
    const bad = await client().set({ privateKey: dev.privateKey.slice(0, 40) + '!!!=', peers: [] }).catch((x) => x);
    expect(bad.code).toBe('WEFT_INVALID_ARGUMENT');
    expect(bad.message).toMatch(/invalid privateKey/);
    expectNoSecret(bad.message);
    expect(bad.message).not.toContain(dev.privateKey.slice(0, 40));
    const ep = await client().set({ peers: [{ publicKey: peer.publicKey, endpoint: 'host.example:1' }] }).catch((x) => x);
    expect(ep.message).toMatch(/invalid peers\[0\]\.endpoint/);
    expect(requests.length).toBe(before);
  });

  it('parseGetReply and publicKeyOf agree with the key pair', () => {
    const s = parseGetReply(`private_key=${hex(dev.privateKey)}\nerrno=0\n`, 'x');
    expect(s.publicKey).toBe(publicKeyOf(dev.privateKey));
  });
});
