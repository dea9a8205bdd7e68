// Socket buffers of wireguard-go's UDP sockets, measured with ss: the version
// Debian ships never sizes them (they get net.core.rmem_default), and
// raiseSocketBuffers, reaching them through pidfd_getfd, gives them 7 MiB
// (which the kernel shows doubled) without touching any host-wide sysctl.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { sysctlGet } from '../../../dataplane/sysctl';
import { raiseSocketBuffers, WIREGUARD_SOCKET_BUFFER } from '../../../dataplane/wireguard/socket-buffers';
import { DEFAULT_LOG_DIR, startUserspaceDevice, type UserspaceDevice } from '../../../dataplane/wireguard/userspace';
import { uniqueName } from '../../helpers/names';
import { caught } from '../../helpers/process';
import { nsExec, useTestNetns } from '../../helpers/netns';
import { requireSystem } from '../../helpers/system';

requireSystem([{ pkg: 'wireguard-go', command: 'wireguard-go' }, { pkg: 'iproute2', command: 'ss' }]);

const namespaces = useTestNetns('wb', 1);
let devices: UserspaceDevice[] = [];

afterEach(async () => {
  for (const d of devices) {
    await d.stop();
    rmSync(`${DEFAULT_LOG_DIR}/${d.name}.log`, { force: true });
  }
  devices = [];
});

/** Receive and send buffer sizes of the UDP sockets on the port, as the kernel reports them. */
function buffers(ns: string, port: number): Array<{ rb: number; tb: number }> {
  const ss = nsExec(ns, 'ss', ['-Huamn', `sport = :${port}`]);
  return [...ss.matchAll(/rb(\d+),t\d+,tb(\d+)/g)].map((m) => ({ rb: Number(m[1]), tb: Number(m[2]) }));
}

describe("wireguard-go's UDP socket buffers", () => {
  it('start where its version leaves them and are raised to 7 MiB from outside, every socket of the process', async () => {
    const [ns] = namespaces();
    const dev = await startUserspaceDevice({ name: uniqueName('wb'), netns: ns });
    devices.push(dev);
    await dev.apply({ listenPort: 51820, peers: [] });
    const before = buffers(ns, 51820);
    expect(before.length).toBeGreaterThan(0);
    const version = execFileSync('wireguard-go', ['--version'], { encoding: 'utf8' }).match(/v?0\.0\.(\d{8})/)![1];
    const rmemDefault = Number(sysctlGet('net/core/rmem_default', { netns: ns }));
    // before March 2023 wireguard-go never sized its sockets; later ones ask 7 MiB themselves (doubled by the kernel)
    const doubled = 2 * WIREGUARD_SOCKET_BUFFER;
    for (const b of before) expect(b.rb).toBe(Number(version) < 20230302 ? rmemDefault : doubled);

    const r = raiseSocketBuffers(dev.pid!);
    expect(r).toEqual({ sockets: before.length, rcvbuf: doubled, sndbuf: doubled });
    const after = buffers(ns, 51820);
    expect(after).toEqual(before.map(() => ({ rb: doubled, tb: doubled })));
    console.log(`wireguard-go ${version}: UDP receive buffer ${before[0].rb} bytes before, ${after[0].rb} after (net.core.rmem_default ${rmemDefault})`);
  });

  it('a process that is gone is a clear error, and one with no UDP socket is nothing to do', () => {
    const gone = caught(() => raiseSocketBuffers(2 ** 22 + 12345));
    expect(gone.message).toMatch(/ENOENT|ESRCH/);
    expect(raiseSocketBuffers(process.pid)).toEqual({ sockets: 0, rcvbuf: 0, sndbuf: 0 });
  });
});
