// ADD refuses, before anything is created, what the controller would refuse
// in the endpoint record (controller/api/validate.ts): otherwise the
// container would be networked here but never registered, and its endpoint
// would sit at the head of the outbox. No kernel: every refusal comes before
// the first netlink call (the host namespace given does not even exist).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCniHandlers, type WeftCniHandlers } from '../../cni-plugin/agent/cni-handlers';
import { openIpamStore, type IpamStore } from '../../cni-plugin/agent/ipam-store';
import type { EndpointRecord, NetworkAttachment } from '../../cni-plugin/agent/state/types';
import { CniError, type CniRequest } from '../../cni-plugin/cni/types';

const BLUE: NetworkAttachment = {
  network: 'blue', vni: 1, networkCidr: '10.99.0.0/16', subnet: '10.99.0.0/24', gateway: '10.99.0.1',
  vxlanDevice: 'weft.vx1', bridge: 'weft.br1', mtu: 1450,
};

describe('ADD applies the controller\'s rules first', () => {
  let dir: string;
  let ipam: IpamStore;
  let reported: EndpointRecord[];
  let h: WeftCniHandlers;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-cni-validate-'));
    ipam = openIpamStore({ path: join(dir, 'agent.db') });
    reported = [];
    h = createCniHandlers({
      attachment: (n) => (n === 'blue' ? BLUE : undefined), ipam,
      endpoints: { registered: (ep) => reported.push(ep), released: (ep) => reported.push(ep) },
      hostNetns: join(dir, 'no-such-host-netns'),
    });
  });
  afterEach(() => {
    ipam.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // a netns path that does not exist: a request that got past validation fails on it with 3, not 4
  const add = (o: Partial<CniRequest> & { runtimeLabels?: Record<string, unknown> } = {}): CniRequest => ({
    command: 'ADD', containerId: 'ctr-1', netns: join(dir, 'no-such-netns'), ifname: 'eth0', args: {}, path: [],
    config: {
      cniVersion: '1.1.0', name: 'weft', type: 'weft', network: 'blue', agentSocket: '/run/weft/cni.sock', raw: {},
      ...(o.runtimeLabels ? { runtimeConfig: { labels: o.runtimeLabels } } : {}),
    },
    ...o,
  });
  const refusal = async (req: CniRequest) => {
    const e = await h.add(req).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(CniError);
    return { code: (e as CniError).cniCode, msg: (e as CniError).message };
  };

  it.each([
    ['CNI_IFNAME with shell characters', { ifname: 'e;$(id)' }, /^CNI_IFNAME: "e;\$\(id\)" is not an interface name/],
    ['CNI_CONTAINERID with a slash', { containerId: '../ctr' }, /^CNI_CONTAINERID: "\.\.\/ctr" is not a container id/],
    ['K8S_POD_NAME=../../x', { args: { K8S_POD_NAME: '../../x' } }, /value "\.\.\/\.\.\/x" of "k8s\.pod\.name" is not a valid label value/],
    ['a label value over 63 characters', { args: { 'weft.label.app': 'a'.repeat(64) } }, /of "app" is not a valid label value/],
    ['a label key the controller refuses', { args: { 'weft.label.-bad': 'x' } }, /key "-bad" is not a valid label name/],
    ['too many labels', { runtimeLabels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])) }, /has 33 entries \(at most 32\)/],
  ] as Array<[string, Partial<CniRequest> & { runtimeLabels?: Record<string, unknown> }, RegExp]>)('%s: INVALID_ENV (4), nothing allocated or reported', async (_what, o, msg) => {
    const r = await refusal(add(o));
    expect(r.code).toBe(4);
    expect(r.msg).toMatch(msg);
    expect(r.msg).toContain('the weft controller would refuse this endpoint');
    await new Promise((resolve) => setImmediate(resolve));
    expect(ipam.list()).toEqual([]);
    expect(reported).toEqual([]);
  });

  it('a request that passes the rules gets as far as the namespace (3: it does not exist)', async () => {
    const r = await refusal(add({ args: { K8S_POD_NAME: 'web-0', 'weft.label.app': 'web' } }));
    expect(r.code).toBe(3);
  });
});
