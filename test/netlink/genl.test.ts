import { describe, expect, it } from 'vitest';
import { openHandle } from '../../dataplane/netlink/handle';
import { NETLINK_GENERIC } from '../../dataplane/netlink/codec';
import { genlFamilyGet, genlFamilyList, GENL_ID_CTRL } from '../../dataplane/netlink/genl';
import { NetlinkError } from '../../dataplane/netlink/errors';
import { useTestNetns } from '../helpers/netns';

describe('generic netlink', () => {
  const ns = useTestNetns('g');

  it('resolves the controller family itself, with its multicast group', () => {
    const h = openHandle({ netns: ns()[0], protocol: NETLINK_GENERIC });
    try {
      const ctrl = genlFamilyGet(h, 'nlctrl');
      expect(ctrl.id).toBe(GENL_ID_CTRL);
      expect(ctrl.name).toBe('nlctrl');
      expect(ctrl.mcastGroups).toHaveProperty('notify');
    } finally {
      h.close();
    }
  });

  it('lists families, and every listed one resolves to the same id by name', () => {
    const h = openHandle({ netns: ns()[0], protocol: NETLINK_GENERIC });
    try {
      const all = genlFamilyList(h);
      expect(all.length).toBeGreaterThan(1);
      expect(all.map((f) => f.name)).toContain('nlctrl');
      for (const f of all.slice(0, 10)) expect(genlFamilyGet(h, f.name).id).toBe(f.id);
    } finally {
      h.close();
    }
  });

  it('reports a family the kernel lacks as a typed ENOENT', () => {
    const h = openHandle({ netns: ns()[0], protocol: NETLINK_GENERIC });
    try {
      let err: unknown;
      try {
        genlFamilyGet(h, 'wtnosuchfamily');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as NetlinkError).code).toBe('ENOENT');
      expect((err as NetlinkError).op).toBe('genl family get wtnosuchfamily');
      expect(() => genlFamilyGet(h, 'bad name!')).toThrow(/invalid generic netlink family name/);
    } finally {
      h.close();
    }
  });
});
