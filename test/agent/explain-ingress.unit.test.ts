// weft explain through the ingress, over plain facts: the client's way in,
// the ingress table's DNAT (no table, no element for the port, no backend:
// each the break), then the path to the backend as forwarding takes it; and
// the `<address>:<port>[/tcp|udp]` argument.
import { describe, expect, it } from 'vitest';
import { splitExplainArgs } from '../../cni-plugin/agent/explain/command';
import type { ExplainFacts, IngressFact } from '../../cni-plugin/agent/explain/facts';
import { renderText } from '../../cni-plugin/agent/explain/render';
import { explainPath } from '../../cni-plugin/agent/explain/verdicts';

const ingress = (over: Partial<IngressFact> = {}): IngressFact => ({
  client: '198.18.0.2', listen: '198.18.0.1', port: 9100, protocol: 'tcp', table: 'weft-ingress',
  clientRoute: { ok: true, dev: 'wtclient', src: '198.18.0.1', type: 'unicast' },
  l4: {
    exists: true, chain: 'lb_tcp_211_flow_9088', by: 'address', buckets: 211,
    backends: [{ ip: '10.244.2.5', port: 9000, buckets: 106 }, { ip: '10.244.3.5', port: 9000, buckets: 105 }],
  },
  backend: { ip: '10.244.2.5', port: 9000 },
  ...over,
});

function facts(over: Partial<ExplainFacts> = {}): ExplainFacts {
  return {
    src: '198.18.0.2', dst: '10.244.2.5', self: { name: 'edge', datacenter: 'dc1' },
    controller: { ok: true, server: 'ctl:7443', identity: 'host' },
    networks: [{ name: 'default', vni: 1, cidr: '10.244.0.0/16' }],
    srcOwner: null,
    dstOwner: { host: 'r1a', network: 'default', subnet: '10.244.2.0/24', underlayIp: '172.31.1.11', vtepMac: '02:aa:bb:cc:dd:02', datacenter: 'dc1', endpoint: { containerId: 'beef'.repeat(16), ifname: 'eth0' } },
    hostRoute: { ok: true, dev: 'weft.vx1', gw: '10.244.2.0', type: 'unicast' },
    devices: { 'weft.vx1': { name: 'weft.vx1', exists: true, up: true, mtu: 1450 } },
    neigh: { ip: '10.244.2.0', mac: '02:aa:bb:cc:dd:02', state: 'permanent' },
    fdb: { mac: '02:aa:bb:cc:dd:02', dst: '172.31.1.11' },
    nextHopHost: { name: 'r1a', underlayIp: '172.31.1.11', vtepMac: '02:aa:bb:cc:dd:02', datacenter: 'dc1' },
    underlay: { dst: '172.31.1.11', route: { ok: true, dev: 'eth0', type: 'unicast' }, mtu: 1500 },
    ingress: ingress(),
    ...over,
  };
}

describe('weft explain through the ingress', () => {
  it('in by the client-facing link, DNAT to the backends in the map, then over the overlay to one of them', () => {
    const e = explainPath(facts());
    expect(e.complete, renderText(e)).toBe(true);
    expect(e.hops.map((h) => `${h.kind}@${h.host}`)).toEqual(['ingress@edge', 'ingress@edge', 'route@edge', 'vxlan@edge', 'underlay@edge', 'host@r1a', 'container@r1a']);
    expect(e.hops[0].what).toBe('client 198.18.0.2 -> 198.18.0.1:9100/tcp, in by wtclient (ip route get 198.18.0.2: dev wtclient src 198.18.0.1)');
    expect(e.hops[1].what).toBe('nft ip weft-ingress: tcp 198.18.0.1 . 9100 -> lb_tcp_211_flow_9088: DNAT by hash to 10.244.2.5:9000 (106/211 buckets), 10.244.3.5:9000 (105/211 buckets)');
    expect(e.hops[1].why).toBe("each flow goes to one backend by a hash of the client's address and port; the path below is to 10.244.2.5:9000");
    expect(e.hops[2].what).toBe('ip route get 10.244.2.5 from 198.18.0.2 iif wtclient: via 10.244.2.0 dev weft.vx1');
  });

  it('no table, no element for the port, no backend, no route back to the client: each the break', () => {
    const noTable = explainPath(facts({ ingress: ingress({ l4: { exists: false, backends: [] } }) }));
    expect(noTable.break).toMatchObject({ kind: 'ingress', host: 'edge' });
    expect(noTable.break!.why).toBe('there is no nftables table ip weft-ingress: no L4 service is programmed on edge (weft ingress is not running here, or runs with another --nft-table)');
    const noPort = explainPath(facts({ ingress: ingress({ l4: { exists: true, backends: [] } }) }));
    expect(noPort.break!.why).toBe('no element for 198.18.0.1:9100/tcp in tcp_svc (address . port) or tcp_any (any local address): the packet is not DNATed and goes to edge itself');
    const empty = explainPath(facts({ ingress: ingress({ l4: { exists: true, chain: 'lb_tcp_211_ip_9088', by: 'any', backends: [] }, backend: undefined }) }));
    expect(empty.break!.what).toBe('nft ip weft-ingress: tcp any local address . 9100 -> lb_tcp_211_ip_9088');
    expect(empty.break!.why).toContain('has no backend for port 9100');
    const noWay = explainPath(facts({ ingress: ingress({ clientRoute: { ok: false, errno: 'ENETUNREACH', message: 'x' } }) }));
    expect(noWay.break).toMatchObject({ kind: 'ingress' });
    expect(noWay.break!.why).toContain('no way back to the client');
    expect(noWay.hops).toHaveLength(1);
  });

  it('a backend in another datacenter: the route must take the overlay towards a local gateway, or the fail-closed table drops it', () => {
    const e = explainPath(facts({
      dstOwner: { ...facts().dstOwner!, datacenter: 'dc2' },
      hostRoute: { ok: true, dev: 'eth0', gw: '172.31.1.1', type: 'unicast' },
      failClosed: { exists: true, tunnelIfs: ['weft.vx1'] },
    }));
    expect(e.break).toMatchObject({ kind: 'route', host: 'edge' });
    expect(e.break!.why).toContain('dropped and counted by rule "weft: an IPv4 address of another datacenter leaves only through the tunnel"');
  });

  it("an http port: the L7 proxy listening here and the services' backends, then the proxy's own route; not listening, or no backend, is the break", () => {
    const l7 = { listening: '198.18.0.1:80', services: [{ name: 'web', targetPort: 8080, route: '*/', backends: [{ ip: '10.244.2.5', host: 'r1a' }] }] };
    const http = ingress({ port: 80, l4: { exists: true, backends: [] }, l7, backend: { ip: '10.244.2.5', port: 8080 } });
    const e = explainPath(facts({ ingress: http }));
    expect(e.complete, renderText(e)).toBe(true);
    expect(e.hops[1].what).toBe('L7 proxy on 198.18.0.1:80: web (*/ -> port 8080): backends 10.244.2.5:8080 (r1a)');
    expect(e.hops[2].what).toBe('ip route get 10.244.2.5: via 10.244.2.0 dev weft.vx1');
    const deaf = explainPath(facts({ ingress: { ...http, l7: { services: l7.services } } }));
    expect(deaf.break!.why).toBe('nothing on edge listens on 198.18.0.1:80 (TCP): the L7 proxy of weft ingress does not serve it here, and the client\'s connection is refused');
    const empty = explainPath(facts({ ingress: { ...http, l7: { ...l7, services: [{ ...l7.services[0], backends: [] }] }, backend: undefined } }));
    expect(empty.break!.why).toBe('no service routed on http port 80 has a backend: the proxy answers 503');
  });

  it('the argument: <client-ip> <address>:<port>[/tcp|udp]', () => {
    expect(splitExplainArgs(['198.18.0.2', '198.18.0.1:9100/udp', '--server', 'x:1'])).toMatchObject({ src: '198.18.0.2', dst: '198.18.0.1', service: { port: 9100, protocol: 'udp' }, agentArgv: ['--server', 'x:1'] });
    expect(splitExplainArgs(['198.18.0.2', '198.18.0.1:80']).service).toEqual({ port: 80, protocol: 'tcp' });
    expect(splitExplainArgs(['198.18.0.2', '198.18.0.1:70000']).error).toBe('"198.18.0.1:70000" is not ADDRESS:PORT[/tcp|udp]');
    expect(splitExplainArgs(['10.0.0.1', '10.0.0.2']).service).toBeUndefined();
  });
});
