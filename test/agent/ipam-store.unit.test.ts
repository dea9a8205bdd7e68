import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openIpamStore, subnetRange, type IpamStore } from '../../cni-plugin/agent/ipam-store';
import { CniError, CNI_ERR } from '../../cni-plugin/cni/types';
import { thrown } from '../helpers/process';


describe('ipam store', () => {
  let dir: string;
  let path: string;
  let store: IpamStore;
  let clock: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-ipam-'));
    path = join(dir, 'sub', 'agent.db');
    clock = 1_000;
    store = openIpamStore({ path, now: () => clock++ });
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const alloc = (cid: string, ifname = 'eth0', subnet = '10.99.0.0/24', gw = '10.99.0.1', net = 'blue') =>
    store.allocate(net, subnet, gw, cid, ifname);

  it('hands out the first usable address after the gateway, in WAL mode with synchronous=FULL', () => {
    const r = alloc('c1');
    expect(r).toEqual({ fresh: true, allocation: { network: 'blue', ip: '10.99.0.2', containerId: 'c1', ifname: 'eth0', createdAt: 1000 } });
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('returns the same address for the same container and interface (ADD retry)', () => {
    const a = alloc('c1');
    const b = alloc('c1');
    expect(b.fresh).toBe(false);
    expect(b.allocation).toEqual(a.allocation);
    // another interface of the same container is another attachment
    expect(alloc('c1', 'eth1').allocation.ip).toBe('10.99.0.3');
    expect(store.list('blue')).toHaveLength(2);
  });

  it('goes round-robin: a just-freed address is not the next one handed out', () => {
    expect(alloc('a').allocation.ip).toBe('10.99.0.2');
    expect(alloc('b').allocation.ip).toBe('10.99.0.3');
    expect(store.release('blue', 'a', 'eth0')?.ip).toBe('10.99.0.2');
    expect(alloc('c').allocation.ip).toBe('10.99.0.4');
  });

  it('never hands out the network address, the gateway or the broadcast, and reports exhaustion naming network and subnet', () => {
    // /29: .0 network, .1 gateway, .7 broadcast -> .2 to .6
    const ips = ['a', 'b', 'c', 'd', 'e'].map((c) => alloc(c, 'eth0', '10.98.0.0/29', '10.98.0.1').allocation.ip);
    expect(ips).toEqual(['10.98.0.2', '10.98.0.3', '10.98.0.4', '10.98.0.5', '10.98.0.6']);
    const err = thrown(() => alloc('f', 'eth0', '10.98.0.0/29', '10.98.0.1'));
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).cniCode).toBe(CNI_ERR.ADDRESSES_EXHAUSTED);
    expect((err as CniError).message).toContain('"blue"');
    expect((err as CniError).message).toContain('10.98.0.0/29');
    expect(store.list('blue')).toHaveLength(5);
    // freeing one makes room again, and the search wraps around to find it
    store.release('blue', 'c', 'eth0');
    expect(alloc('f', 'eth0', '10.98.0.0/29', '10.98.0.1').allocation.ip).toBe('10.98.0.4');
  });

  it('skips a gateway that is not the first address', () => {
    const ips = ['a', 'b', 'c'].map((c) => alloc(c, 'eth0', '10.98.0.0/29', '10.98.0.3').allocation.ip);
    expect(ips).toEqual(['10.98.0.1', '10.98.0.2', '10.98.0.4']);
  });

  it('refuses a gateway outside the subnet and a subnet too small for containers', () => {
    const e1 = thrown(() => alloc('a', 'eth0', '10.99.0.0/24', '10.99.1.1')) as CniError;
    expect(e1.cniCode).toBe(CNI_ERR.INVALID_CONFIG);
    expect(e1.message).toContain('10.99.1.1');
    const e2 = thrown(() => alloc('a', 'eth0', '10.99.0.0/31', '10.99.0.0')) as CniError;
    expect(e2.cniCode).toBe(CNI_ERR.INVALID_CONFIG);
    expect(e2.message).toContain('10.99.0.0/31');
    const e3 = thrown(() => alloc('a', 'eth0', 'not-a-cidr', '10.99.0.1')) as CniError;
    expect(e3.cniCode).toBe(CNI_ERR.INVALID_CONFIG);
    expect(store.list()).toEqual([]);
  });

  it('allocates IPv6 the same way', () => {
    expect(alloc('a', 'eth0', 'fd00:99::/125', 'fd00:99::1').allocation.ip).toBe('fd00:99::2');
    expect(subnetRange('fd00:99::5/125')).toMatchObject({ cidr: 'fd00:99::/125', prefixLen: 125 });
  });

  it('keeps networks apart: the same address may be held in two networks', () => {
    expect(alloc('a', 'eth0', '10.99.0.0/24', '10.99.0.1', 'blue').allocation.ip).toBe('10.99.0.2');
    expect(alloc('a', 'eth1', '10.99.0.0/24', '10.99.0.1', 'red').allocation.ip).toBe('10.99.0.2');
    expect(store.list().map((a) => a.network)).toEqual(['blue', 'red']);
  });

  it('release is idempotent and returns what it freed', () => {
    const a = alloc('a', 'eth0');
    expect(store.release('blue', 'a', 'eth0')).toEqual(a.allocation);
    expect(store.release('blue', 'a', 'eth0')).toBeUndefined();
    expect(store.release('blue', 'never', 'eth0')).toBeUndefined();
    expect(store.get('blue', 'a', 'eth0')).toBeUndefined();
  });

  it('GC: releaseAllExcept frees only this network\'s allocations missing from the valid list', () => {
    alloc('a');
    alloc('b');
    alloc('b', 'eth1');
    alloc('c', 'eth0', '10.99.0.0/24', '10.99.0.1', 'red');
    const freed = store.releaseAllExcept('blue', [{ containerId: 'a', ifname: 'eth0' }, { containerId: 'b', ifname: 'eth1' }]);
    expect(freed.map((f) => `${f.containerId}/${f.ifname}`)).toEqual(['b/eth0']);
    expect(store.list().map((f) => `${f.network}:${f.containerId}/${f.ifname}`)).toEqual(['blue:a/eth0', 'blue:b/eth1', 'red:c/eth0']);
    expect(store.releaseAllExcept('blue', [])).toHaveLength(2);
    expect(store.list().map((f) => f.network)).toEqual(['red']);
  });

  it('after a subnet change reports the allocations outside the new subnet and never hands their addresses out again', () => {
    alloc('a');
    alloc('b');
    const stale = store.outsideSubnet('blue', '10.99.7.0/24');
    expect(stale.map((s) => s.ip)).toEqual(['10.99.0.2', '10.99.0.3']);
    expect(store.outsideSubnet('blue', '10.99.0.0/24')).toEqual([]);
    // a new container gets an address of the new subnet
    expect(alloc('c', 'eth0', '10.99.7.0/24', '10.99.7.1').allocation.ip).toBe('10.99.7.2');
    // a retried ADD of a container holding an old address gets a new one, and is told what it lost
    const r = alloc('a', 'eth0', '10.99.7.0/24', '10.99.7.1');
    expect(r.fresh).toBe(true);
    expect(r.allocation.ip).toBe('10.99.7.3');
    expect(r.replaced?.ip).toBe('10.99.0.2');
    expect(store.outsideSubnet('blue', '10.99.7.0/24').map((s) => s.containerId)).toEqual(['b']);
  });

  it('keeps allocations and the round-robin cursor across a reopen', () => {
    alloc('a');
    alloc('b');
    store.release('blue', 'b', 'eth0');
    store.close();
    store = openIpamStore({ path });
    expect(store.list().map((a) => a.ip)).toEqual(['10.99.0.2']);
    expect(alloc('c').allocation.ip).toBe('10.99.0.4');
    expect(alloc('a').fresh).toBe(false);
  });

  it('two connections on one file never hand out the same address', () => {
    const other = openIpamStore({ path });
    try {
      const ips = new Set<string>();
      for (let i = 0; i < 20; i++) {
        ips.add(alloc(`x${i}`).allocation.ip);
        ips.add(other.allocate('blue', '10.99.0.0/24', '10.99.0.1', `y${i}`, 'eth0').allocation.ip);
      }
      expect(ips.size).toBe(40);
    } finally {
      other.close();
    }
  });

  it('property: across random allocate/release sequences no address is held twice and the model agrees', () => {
    // a /28: .0 network, .1 gateway, .15 broadcast -> 13 usable, small enough to hit exhaustion often
    const op = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), c: fc.integer({ min: 0, max: 20 }), i: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ kind: fc.constant('release' as const), c: fc.integer({ min: 0, max: 20 }), i: fc.integer({ min: 0, max: 1 }) }),
    );
    let run = 0;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const net = `prop${run++}`;
        const model = new Map<string, string>();
        for (const o of ops) {
          const cid = `c${o.c}`;
          const ifname = `eth${o.i}`;
          const key = `${cid}/${ifname}`;
          if (o.kind === 'alloc') {
            const before = model.get(key);
            if (before === undefined && model.size === 13) {
              expect((thrown(() => store.allocate(net, '10.50.0.0/28', '10.50.0.1', cid, ifname)) as CniError).cniCode).toBe(CNI_ERR.ADDRESSES_EXHAUSTED);
              continue;
            }
            const r = store.allocate(net, '10.50.0.0/28', '10.50.0.1', cid, ifname);
            expect(r.fresh).toBe(before === undefined);
            if (before !== undefined) expect(r.allocation.ip).toBe(before);
            expect(['10.50.0.0', '10.50.0.1', '10.50.0.15']).not.toContain(r.allocation.ip);
            model.set(key, r.allocation.ip);
          } else {
            const freed = store.release(net, cid, ifname);
            expect(freed?.ip).toBe(model.get(key));
            model.delete(key);
          }
          const held = store.list(net);
          expect(new Set(held.map((h) => h.ip)).size).toBe(held.length);
          expect(Object.fromEntries(held.map((h) => [`${h.containerId}/${h.ifname}`, h.ip]))).toEqual(Object.fromEntries(model));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a process killed while allocating leaves a consistent database with every committed change', async () => {
    store.close();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./ipam-store-crash-worker.ts', import.meta.url)), path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`worker exited on its own (${code})`)));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // let it get well into its run so the kill lands mid-transaction more often than not
        if (out.split('\n').length > 400) {
          child.removeAllListeners('exit');
          child.kill('SIGKILL');
          child.on('exit', () => resolve());
        }
      });
    });
    // the last line may be cut short by the kill
    const complete = out.split('\n').slice(0, -1);
    const allocated = new Map<string, string>();
    const released = new Set<string>();
    let lastAllocated = '';
    for (const l of complete) {
      const [kind, cid, ip] = l.split(' ');
      if (kind === 'A') {
        allocated.set(cid, ip);
        lastAllocated = cid;
      } else released.add(cid);
    }

    const db = new Database(path);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
    store = openIpamStore({ path });
    const rows = store.list('crash');
    const byCid = new Map(rows.map((r) => [r.containerId, r.ip]));
    expect(new Set(rows.map((r) => r.ip)).size).toBe(rows.length);
    for (const [cid, ip] of allocated) {
      if (released.has(cid)) expect(byCid.has(cid)).toBe(false);
      // the last one may have been released after its line was printed and before the kill
      else if (cid !== lastAllocated) expect(byCid.get(cid)).toBe(ip);
    }
    // at most one change committed and not yet printed
    const unprinted = rows.filter((r) => !allocated.has(r.containerId));
    expect(unprinted.length).toBeLessThanOrEqual(1);
    // and the store carries on where it stopped
    const next = store.allocate('crash', '10.77.0.0/16', '10.77.0.1', 'after', 'eth0').allocation.ip;
    expect(rows.map((r) => r.ip)).not.toContain(next);
  });
});
