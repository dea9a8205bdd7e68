// A key rotation against a real controller (the service over gRPC, SQLite
// store) through the agent's own client: the gateway drains itself, registers
// its new public key, reports its tunnels and undrains, the last active
// gateway is told so with a code the client recognises, and afterwards
// neither the old nor the new private key is anywhere in the store, in the
// controller's log or in the agent's log, in any encoding.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AgentClient, connectAgentClient, isLastActiveGateway } from '../../cni-plugin/agent/sync/controller';
import { ensureWireGuardKeys, wireGuardKeySince } from '../../cni-plugin/agent/state/wireguard-keys';
import { rotateKey, type RotationDeps } from '../../cni-plugin/agent/tunnel/rotation';
import { ID_HEADER, type Harness, registerHost, startHarness } from '../controller/api-harness';
import { captureLogger } from '../helpers/log';

let h: Harness;
let dir: string;
const clients: AgentClient[] = [];
beforeEach(async () => {
  h = await startHarness();
  dir = mkdtempSync(join(tmpdir(), 'weft-rotation-secrets-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `as`: the identity the controller sees (the certificate's name), when it is not the host the client speaks for. */
function agentClient(name: string, as = name): AgentClient {
  const c = connectAgentClient({
    server: `127.0.0.1:${h.port}`, credentials: grpc.credentials.createInsecure(), metadata: { [ID_HEADER]: `host:${as}` }, hostName: name,
  });
  clients.push(c);
  return c;
}

/** Every encoding a private key could leak in. */
function leaks(privateKey: string, haystack: string): string[] {
  const raw = Buffer.from(privateKey, 'base64');
  const forms = { base64: privateKey, base64url: raw.toString('base64url'), hex: raw.toString('hex'), raw: raw.toString('latin1') };
  return Object.entries(forms).filter(([, v]) => haystack.includes(v)).map(([k]) => k);
}

async function storeText(): Promise<string> {
  return (await h.store.range('/')).kvs.map((kv) => `${kv.key}=${kv.value}`).join('\n');
}

describe('a rotation against a real controller', () => {
  it('drains, registers the new key, undrains, and leaves no private key in the store or either log', async () => {
    const old = await ensureWireGuardKeys(dir);
    await registerHost(h, 'g1', 1, { datacenter: 'dc1', wg_public_key: old.publicKey });
    await registerHost(h, 'g2', 2, { datacenter: 'dc1' });
    await h.call('CreateDatacenter', { name: 'dc1', gateways: [{ host: 'g1' }, { host: 'g2' }] }, 'admin');
    const client = agentClient('g1');
    const { logger, lines } = captureLogger('debug');
    const seen: string[] = [];
    const deps: RotationDeps = {
      now: Date.now,
      stateDir: dir,
      async setOwnGatewayState(state) {
        const r = await client.setOwnGatewayState(state);
        const dc = JSON.parse((await h.store.get('/weft/datacenters/dc1'))!.value);
        seen.push(`${state}: ${dc.gateways.map((g: { host: string; state: string }) => `${g.host}=${g.state}`).join(',')}`);
        return r;
      },
      lastActive: isLastActiveGateway,
      registerPublicKey: (pub) => client.setWireGuardKey(pub),
      tunnelIdle: async () => true,
      remoteGateways: () => [],
      handshakeWith: () => true,
      reconcileNow: async () => {},
      log: logger,
      limits: { pollMs: 10, retryMs: 10 },
    };
    const out = await rotateKey(deps, 'test');
    const now = await ensureWireGuardKeys(dir);
    expect(out).toMatchObject({ publicKey: now.publicKey, drained: true, lastActive: false });
    expect(seen).toEqual(['draining: g1=draining,g2=active', 'active: g1=active,g2=active']);
    expect(JSON.parse((await h.store.get('/weft/hosts/g1'))!.value).wgPublicKey).toBe(now.publicKey);
    // the agent reports its tunnels with the key's age
    await client.heartbeat({
      agentVersion: 'test',
      tunnel: {
        role: 'gateway', datacenter: 'dc1', paths: [], peers: [], wgMtu: 1420, xdcMtu: 1370, mtuSource: 'derived', keySince: await wireGuardKeySince(dir),
      },
    });
    expect(JSON.parse((await h.store.get('/weft/host-status/g1'))!.value).tunnel.keySince).toBeGreaterThan(0);

    const stored = await storeText();
    expect(stored).toContain(now.publicKey);
    const controllerLog = h.logs.map((l) => JSON.stringify(l)).join('\n');
    const agentLog = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(agentLog).toContain('key rotation: done');
    for (const priv of [old.privateKey, now.privateKey]) {
      expect(leaks(priv, stored)).toEqual([]);
      expect(leaks(priv, controllerLog)).toEqual([]);
      expect(leaks(priv, agentLog)).toEqual([]);
    }
  });

  it('the last active gateway learns so from the controller and rotates in place, its entry never drained', async () => {
    const old = await ensureWireGuardKeys(dir);
    await registerHost(h, 'g1', 1, { datacenter: 'dc1', wg_public_key: old.publicKey });
    await h.call('CreateDatacenter', { name: 'dc1', gateways: [{ host: 'g1' }], allow_single_gateway: true }, 'admin');
    const client = agentClient('g1');
    const refused = await client.setOwnGatewayState('draining').then(() => undefined, (e) => e);
    expect(isLastActiveGateway(refused)).toBe(true);
    // another refusal is not taken for it: g1's certificate acting for g2
    const other = await agentClient('g2', 'g1').setOwnGatewayState('draining').then(() => undefined, (e) => e);
    expect(other).toMatchObject({ code: grpc.status.PERMISSION_DENIED, weftCode: 'WEFT_PERMISSION_DENIED' });
    expect(isLastActiveGateway(other)).toBe(false);
    const { logger } = captureLogger('debug');
    const out = await rotateKey({
      now: Date.now, stateDir: dir, setOwnGatewayState: (s) => client.setOwnGatewayState(s), lastActive: isLastActiveGateway,
      registerPublicKey: (pub) => client.setWireGuardKey(pub), tunnelIdle: async () => true, remoteGateways: () => [], handshakeWith: () => true,
      reconcileNow: async () => {}, log: logger,
    }, 'test');
    expect(out).toMatchObject({ drained: false, lastActive: true });
    expect(JSON.parse((await h.store.get('/weft/datacenters/dc1'))!.value).gateways).toEqual([{ host: 'g1', wanEndpoint: '192.168.1.1:51820', state: 'active' }]);
    expect(JSON.parse((await h.store.get('/weft/hosts/g1'))!.value).wgPublicKey).toBe(out.publicKey);
  });
});
