// The real socket under a handle: SO_RCVTIMEO is set, so a receive with no
// reply coming returns EAGAIN after the timeout instead of blocking Node's
// only thread for good; its port id is the one the kernel addresses replies
// to; and the ordinary paths (request, dump, batch) work with the checks on.
import { describe, expect, it } from 'vitest';
import { NETLINK_ROUTE } from '../../dataplane/netlink/codec';
import { openHandle, openNetlinkSocket, throwIfAny } from '../../dataplane/netlink/handle';
import { linkAdd, linkByName, linkDel, linkList, linkSetUpRequest } from '../../dataplane/netlink/link';
import { withNetns } from '../../dataplane/netlink/netns';
import { ipJson, useTestNetns } from '../helpers/netns';

describe('netlink socket timeouts and reply checks', () => {
  const ns = useTestNetns('nt');

  it('a receive with nothing to come returns EAGAIN after the timeout', () => {
    const sock = withNetns(ns()[0], () => openNetlinkSocket(NETLINK_ROUTE, 'test', { timeoutMs: 300 }));
    try {
      expect(sock.portId).toBeGreaterThan(0);
      const t0 = Date.now();
      const r = sock.recv(Buffer.alloc(4096));
      const took = Date.now() - t0;
      expect(r.n).toBe(-11 /* EAGAIN */);
      expect(took).toBeGreaterThanOrEqual(250);
      expect(took).toBeLessThan(3000);
    } finally {
      sock.close();
    }
  });

  it('requests, dumps and batches still work in a namespace with the checks on', () => {
    const h = openHandle({ netns: ns()[0], timeoutMs: 2000 });
    try {
      linkAdd(h, { kind: 'bridge', name: 'tbr0' });
      throwIfAny(h.batch([linkSetUpRequest('tbr0'), linkSetUpRequest('lo')]));
      expect(linkByName(h, 'tbr0').up).toBe(true);
      expect(linkList(h).map((l) => l.name).sort()).toEqual(['lo', 'tbr0']);
      expect(ipJson<Array<{ ifname: string }>>(ns()[0], ['link', 'show']).map((l) => l.ifname).sort()).toEqual(['lo', 'tbr0']);
      linkDel(h, 'tbr0');
      expect(() => linkByName(h, 'tbr0')).toThrow(/ENODEV/);
    } finally {
      h.close();
    }
  });
});
