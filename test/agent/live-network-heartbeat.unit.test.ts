// The heartbeat loop's refresh: a network added to the cluster makes the
// agent register again at once (not at the next heartbeat, up to a third of
// the lease TTL away), with the registration as it is now; a refused
// registration is retried without stopping the heartbeats.
import { describe, expect, it } from 'vitest';
import type { AgentClient, HostRegistration, Registration, Subnet } from '../../cni-plugin/agent/sync/controller';
import { runHeartbeats, type LeaseEvent } from '../../cni-plugin/agent/sync/heartbeat';
import { waitFor } from '../helpers/wait';

const base: HostRegistration = { underlayIp: '192.0.2.1', vtepMac: '02:00:00:00:00:01', rack: 'a', datacenter: 'dc1', wgPublicKey: '', agentVersion: 't', networks: [] };
const sub = (network: string, subnet: string): Subnet => ({ network, subnet, leaseExpiresAt: 0 });
const registered: Registration = { subnets: [sub('default', '10.244.1.0/24')], config: { networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16', host_prefix_length: 24 }], vxlan_port: 4789, mtu: 0, lease_ttl_seconds: 300, reclaim_grace_seconds: 600 } as any, revision: 1 };

function fakeClient(register: (r: HostRegistration) => Promise<Registration>) {
  const calls = { register: [] as HostRegistration[], heartbeat: 0 };
  // the controller renews what the last registration leased
  let held = registered.subnets;
  const client = {
    registerHost: async (r: HostRegistration) => {
      calls.register.push(r);
      const reg = await register(r);
      held = reg.subnets;
      return reg;
    },
    heartbeat: async () => {
      calls.heartbeat++;
      return { subnets: held, nextHeartbeatSeconds: 100, revision: 1 };
    },
  } as unknown as AgentClient;
  return { client, calls };
}

describe('heartbeat refresh', () => {
  it('registers again at once with the registration as it is then, and reports the new lease', async () => {
    let networks: string[] = [];
    const reply: Registration = { ...registered, subnets: [...registered.subnets, sub('green', '10.247.3.0/24')] };
    const { client, calls } = fakeClient(async () => reply);
    const events: LeaseEvent[] = [];
    const loop = runHeartbeats({ client, registration: () => ({ ...base, networks }), registered, onLease: (ev) => events.push(ev), backoff: { initialMs: 10, maxMs: 20 } });
    try {
      await waitFor('the first heartbeat', () => calls.heartbeat === 1, 5000);
      networks = ['default', 'green'];
      const t0 = Date.now();
      loop.refresh('network green added');
      await waitFor('a lease event', () => events.length === 1, 5000);
      // the next heartbeat was 100 s away: the refresh did not wait for it
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(calls.register.map((r) => r.networks)).toEqual([['default', 'green']]);
      expect(events[0]).toMatchObject({ kind: 'reregistered', reason: 'network green added', changed: true });
      expect(events[0].subnets.map((s) => s.network)).toEqual(['default', 'green']);
    } finally {
      await loop.stop();
    }
  });

  it('retries a refused registration with backoff while the heartbeats go on', async () => {
    let fail = 2;
    const { client, calls } = fakeClient(async () => {
      if (fail-- > 0) throw Object.assign(new Error('unavailable'), { code: 14 });
      return registered;
    });
    const events: LeaseEvent[] = [];
    const loop = runHeartbeats({ client, registration: base, registered, onLease: (ev) => events.push(ev), backoff: { initialMs: 10, maxMs: 20 } });
    try {
      loop.refresh('network blue added');
      await waitFor('the refresh to succeed after two refusals', () => events.length === 1, 5000);
      expect(calls.register).toHaveLength(3);
      expect(calls.heartbeat).toBeGreaterThanOrEqual(1);
      expect(events[0]).toMatchObject({ reason: 'network blue added', changed: false });
    } finally {
      await loop.stop();
    }
  });
});
