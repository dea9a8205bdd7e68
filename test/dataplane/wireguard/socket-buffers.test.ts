// Socket buffers for the tunnel's UDP sockets: weft raises the kernel's
// limits where it may (the initial namespace), reports a refusal elsewhere,
// and this test measures what buffer wireguard-go's sockets really get.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { raiseSocketBufferLimits, sysctlGet, sysctlSet } from '../../../dataplane/sysctl';
import { DEFAULT_LOG_DIR, startUserspaceDevice, type UserspaceDevice } from '../../../dataplane/wireguard/userspace';
import { uniqueName } from '../../helpers/names';
import { nsExec, useTestNetns } from '../../helpers/netns';
import { requireSystem } from '../../helpers/system';

requireSystem([{ pkg: 'wireguard-go', command: 'wireguard-go' }]);

const namespaces = useTestNetns('wb', 1);
let devices: UserspaceDevice[] = [];

afterEach(async () => {
  for (const d of devices) {
    await d.stop();
    rmSync(`${DEFAULT_LOG_DIR}/${d.name}.log`, { force: true });
  }
  devices = [];
});

describe('socket buffer limits', () => {
  it('are read-only in a namespace other than the initial one: refused, reported, left as they were', () => {
    const [ns] = namespaces();
    const before = Number(sysctlGet('net/core/rmem_max', { netns: ns }));
    const res = raiseSocketBufferLimits(before + 4096, { netns: ns, defaults: true });
    expect(res.map((r) => [r.key, r.changed, r.refused])).toEqual([
      ['net/core/rmem_max', false, 'EACCES'],
      ['net/core/wmem_max', false, 'EACCES'],
      ['net/core/rmem_default', false, 'EACCES'],
      ['net/core/wmem_default', false, 'EACCES'],
    ]);
    expect(Number(sysctlGet('net/core/rmem_max', { netns: ns }))).toBe(before);
    expect(() => raiseSocketBufferLimits(100)).toThrow(/invalid socket buffer size 100/);
  });

  it('are raised in the initial namespace and never lowered (restored afterwards: a 4 KiB higher cap for a moment)', () => {
    const rmem = Number(sysctlGet('net/core/rmem_max'));
    const wmem = Number(sysctlGet('net/core/wmem_max'));
    try {
      // at or below the current value: nothing written
      expect(raiseSocketBufferLimits(Math.min(rmem, wmem)).map((r) => r.changed)).toEqual([false, false]);
      const target = Math.max(rmem, wmem) + 4096;
      const res = raiseSocketBufferLimits(target);
      expect(res).toEqual([
        { key: 'net/core/rmem_max', before: rmem, after: target, changed: true },
        { key: 'net/core/wmem_max', before: wmem, after: target, changed: true },
      ]);
    } finally {
      sysctlSet('net/core/rmem_max', rmem);
      sysctlSet('net/core/wmem_max', wmem);
    }
  });

  it("wireguard-go's UDP sockets: measured with ss against what its version does", async () => {
    const [ns] = namespaces();
    const dev = await startUserspaceDevice({ name: uniqueName('wb'), netns: ns });
    devices.push(dev);
    await dev.apply({ listenPort: 51820, peers: [] });
    const ss = nsExec(ns, 'ss', ['-Huamn', 'sport = :51820']);
    const rb = [...ss.matchAll(/rb(\d+)/g)].map((m) => Number(m[1]));
    expect(rb.length).toBeGreaterThan(0);
    const version = execFileSync('wireguard-go', ['--version'], { encoding: 'utf8' }).match(/v?0\.0\.(\d{8})/)![1];
    const rmemDefault = Number(sysctlGet('net/core/rmem_default', { netns: ns }));
    // before March 2023 wireguard-go never sized its sockets: they get rmem_default;
    // from 0.0.20250515 it asks 7 MiB with SO_RCVBUFFORCE (root), which the kernel doubles
    const expected = Number(version) < 20230302 ? rmemDefault : 2 * (7 << 20);
    for (const b of rb) expect(b).toBe(expected);
    console.log(`wireguard-go ${version}: UDP receive buffer ${rb[0]} bytes (net.core.rmem_default ${rmemDefault})`);
  });
});
