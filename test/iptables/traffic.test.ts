// Real packets through weft's rules: a "host" namespace routes between two
// local container networks, a remote host's container (inside the cluster
// CIDR) and an outside peer (outside it). Each listener answers with the
// source address it saw, which shows whether the host masqueraded.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { applyRuleSet, removeWeftChains, weftRules } from '../../dataplane/iptables';
import { enableForwarding } from '../../dataplane/sysctl';
import { nsExec, useTestNetns } from '../helpers/netns';

const PORT = 7000;
const SERVER = `require('net').createServer((s) => s.end(s.remoteAddress)).listen(${PORT}, '0.0.0.0', () => console.log('listening'))`;
const CLIENT = `
const [host, port] = process.argv.slice(1);
const s = require('net').connect({ host, port: Number(port) });
let out = '';
s.setTimeout(1500, () => { console.log('timeout'); process.exit(0); });
s.on('data', (d) => (out += d));
s.on('end', () => { console.log(out); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
`;

const POLICY = {
  clusterCidrs: ['10.244.0.0/16'],
  networks: [
    { name: 'a', cidr: '10.244.1.0/24' },
    { name: 'b', cidr: '10.244.2.0/24' },
  ],
};

const servers: ChildProcess[] = [];

afterEach(() => {
  for (const s of servers.splice(0)) if (s.pid && s.exitCode === null) process.kill(s.pid, 'SIGKILL');
});

function ip(args: string[]): void {
  execFileSync('ip', args);
}

/** A veth from the host namespace to `peer`, host side `hostAddr`, peer side `peerAddr` with a default route via the host unless `noRoute`. */
function wire(host: string, dev: string, peer: string, hostAddr: string, peerAddr: string, noRoute = false): void {
  ip(['-n', host, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer]);
  ip(['-n', host, 'addr', 'add', hostAddr, 'dev', dev]);
  ip(['-n', host, 'link', 'set', dev, 'up']);
  ip(['-n', peer, 'addr', 'add', peerAddr, 'dev', 'eth0']);
  ip(['-n', peer, 'link', 'set', 'eth0', 'up']);
  if (!noRoute) ip(['-n', peer, 'route', 'add', 'default', 'via', hostAddr.split('/')[0]]);
}

async function listen(ns: string): Promise<void> {
  // `ip netns exec` execs node in place, so the PID is the server's own
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(p);
  const [line] = (await once(p.stdout!, 'data')) as [Buffer];
  expect(line.toString()).toContain('listening');
}

/** The source address the listener at `addr` saw for a connection from `ns`, or 'timeout'. */
function seenFrom(ns: string, addr: string): string {
  return nsExec(ns, process.execPath, ['-e', CLIENT, addr, String(PORT)]).trim();
}

describe('weft rules on real traffic', () => {
  const nss = useTestNetns('i', 5);

  it('masquerades only towards the outside, never between containers, and isolates networks', async () => {
    const [host, a, b, remote, outside] = nss();
    enableForwarding({ netns: host });
    wire(host, 'va', a, '10.244.1.1/24', '10.244.1.2/24');
    wire(host, 'vb', b, '10.244.2.1/24', '10.244.2.2/24');
    wire(host, 'vr', remote, '10.244.3.1/24', '10.244.3.2/24');
    // the outside peer has no route back to container addresses: only masqueraded traffic gets answers
    wire(host, 'vo', outside, '192.0.2.1/24', '192.0.2.2/24', true);
    await Promise.all([listen(b), listen(remote), listen(outside)]);

    // without weft's rules: plain routing, and the outside peer cannot answer
    expect(seenFrom(a, '10.244.2.2')).toBe('10.244.1.2');
    expect(seenFrom(a, '10.244.3.2')).toBe('10.244.1.2');
    expect(seenFrom(a, '192.0.2.2')).toBe('timeout');

    applyRuleSet(weftRules(POLICY), { netns: host });

    expect(seenFrom(a, '10.244.3.2')).toBe('10.244.1.2'); // container -> container elsewhere in the cluster: source kept
    expect(seenFrom(a, '192.0.2.2')).toBe('192.0.2.1'); // container -> outside: masqueraded
    expect(seenFrom(b, '192.0.2.2')).toBe('192.0.2.1');
    expect(seenFrom(a, '10.244.2.2')).toBe('timeout'); // network a -> network b: dropped
    const counters = nsExec(host, 'iptables-save', ['-c', '-t', 'filter']);
    const drop = /\[(\d+):\d+\] -A WEFT-ISOLATION -s 10\.244\.1\.0\/24 -d 10\.244\.2\.0\/24 -j DROP/.exec(counters);
    expect(Number(drop?.[1])).toBeGreaterThan(0);

    // and removing the rules gives plain routing back
    removeWeftChains({ netns: host });
    expect(seenFrom(a, '10.244.2.2')).toBe('10.244.1.2');
    expect(seenFrom(a, '192.0.2.2')).toBe('timeout');
  });
});
