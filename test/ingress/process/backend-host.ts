// A stand-in for one host with containers, run as its own process inside
// the test's namespace (the controller listens on that namespace's
// loopback):
//
//   ip netns exec NS node --import tsx backend-host.ts '{"server","token","caCertHash","dir","name","count","port","labels"}'
//
// Joins as a host with the token, registers (taking a subnet of the default
// network), puts `count` addresses of that subnet on the namespace's lo,
// serves HTTP on each (`{"backend": ip}`, /healthz 200), registers each as an
// endpoint with `labels`, prints {"ips": [...]} as one line once all are
// serving, and heartbeats until SIGTERM. Its underlay address is a
// documentation address (192.0.2.1): a record only, nothing is sent there. Only the test's namespace is touched.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { connectController } from '../../../controller/api/client/client';
import { channelCredentials, joinCluster } from '../../../controller/api/client/credentials';

type Args = { server: string; token: string; caCertHash: string; dir: string; name: string; count: number; port: number; labels: Record<string, string> };
const a = JSON.parse(process.argv[2]) as Args;

const creds = await joinCluster({ server: a.server, token: a.token, caCertHash: a.caCertHash, hostName: a.name, stateDir: a.dir });
const client = connectController({ server: a.server, credentials: channelCredentials(creds) });
const reg = await client.call('RegisterHost', { name: a.name, underlay_ip: '192.0.2.1', vtep_mac: '02:00:00:00:00:01', rack: 'r1', datacenter: 'dc1', networks: ['default'] });
const subnet = reg.host!.subnets[0].subnet;
const base = subnet.split('/')[0].split('.').map(Number);
const ips = Array.from({ length: a.count }, (_, i) => `${base[0]}.${base[1]}.${base[2]}.${10 + i}`);
for (const ip of ips) {
  execFileSync('ip', ['addr', 'replace', `${ip}/32`, 'dev', 'lo']);
  await new Promise<void>((resolve, reject) => {
    const srv = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ backend: ip, path: req.url }) + '\n');
    });
    srv.once('error', reject);
    srv.listen(a.port, ip, () => resolve());
  });
  await client.call('RegisterEndpoint', { endpoint: { network: 'default', ip, container_id: `c-${ip.replace(/\./g, '-')}`, host: a.name, labels: a.labels, ifname: 'eth0' } });
}
process.stdout.write(JSON.stringify({ ips }) + '\n');

// Keep the lease (and so the endpoints) alive while the test runs; a controller that is away is waited out.
const beat = setInterval(() => client.call('Heartbeat', { name: a.name }).catch(() => {}), 5000);
process.on('SIGTERM', () => {
  clearInterval(beat);
  client.close();
  process.exit(0);
});
