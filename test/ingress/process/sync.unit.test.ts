// The watch -> state fold: SNAPSHOT replaces, SERVICE_PUT upserts,
// SERVICE_DELETE removes, the input state is never changed, and the wire
// fields become the ingress's plain types (defaults, protocols, sorting).
import { describe, expect, it } from 'vitest';
import type { ServiceEvent, ServiceState } from '../../../controller/api/proto';
import { silentLogger } from '../../../controller/common/log';
import { applyServiceEvent, emptyState, toIngressService, watchServices, type IngressState } from '../../../ingress/sync';

function svc(name: string, extra: Partial<ServiceState['service'] & object> = {}, backends: string[] = ['10.244.1.5']): ServiceState {
  return {
    service: {
      name, network: 'default', selector: { app: name }, rack_policy: '', ports: [{ name: 'web', port: 80, target_port: 8080, protocol: 'http' }],
      hostnames: [], path_prefix: '', affinity: '', health_path: '', proxy_protocol: false, ...extra,
    },
    backends: backends.map((ip) => ({ ip, host: 'h1', rack: 'r1', datacenter: 'dc1', container_id: `c-${ip}` })),
  };
}
const ev = (kind: ServiceEvent['kind'], revision: number, services: ServiceState[] = [], service_name = ''): ServiceEvent => ({ kind, revision, services, service_name });
const names = (s: IngressState) => [...s.services.keys()].sort();

describe('applyServiceEvent', () => {
  it('SNAPSHOT replaces everything, even at a lower revision (a replaced store)', () => {
    let s = applyServiceEvent(emptyState(), ev('SNAPSHOT', 10, [svc('a'), svc('b')]));
    expect(names(s)).toEqual(['a', 'b']);
    expect(s.revision).toBe(10);
    s = applyServiceEvent(s, ev('SNAPSHOT', 3, [svc('c')]));
    expect(names(s)).toEqual(['c']);
    expect(s.revision).toBe(3);
  });

  it('SERVICE_PUT adds or replaces one service and keeps the others', () => {
    const s0 = applyServiceEvent(emptyState(), ev('SNAPSHOT', 5, [svc('a'), svc('b')]));
    const s1 = applyServiceEvent(s0, ev('SERVICE_PUT', 6, [svc('a', {}, ['10.244.1.9', '10.244.1.7'])]));
    expect(names(s1)).toEqual(['a', 'b']);
    expect(s1.services.get('a')!.backends.map((b) => b.ip)).toEqual(['10.244.1.7', '10.244.1.9']);
    const s2 = applyServiceEvent(s1, ev('SERVICE_PUT', 7, [svc('z')]));
    expect(names(s2)).toEqual(['a', 'b', 'z']);
    expect(s2.revision).toBe(7);
    // the input is never changed
    expect(s0.services.get('a')!.backends.map((b) => b.ip)).toEqual(['10.244.1.5']);
    expect(names(s1)).toEqual(['a', 'b']);
  });

  it('SERVICE_DELETE removes one service; deleting an unknown one changes nothing but the revision', () => {
    const s0 = applyServiceEvent(emptyState(), ev('SNAPSHOT', 5, [svc('a'), svc('b')]));
    const s1 = applyServiceEvent(s0, ev('SERVICE_DELETE', 6, [], 'a'));
    expect(names(s1)).toEqual(['b']);
    const s2 = applyServiceEvent(s1, ev('SERVICE_DELETE', 7, [], 'nope'));
    expect(names(s2)).toEqual(['b']);
    expect(s2.revision).toBe(7);
    expect(names(s0)).toEqual(['a', 'b']);
  });
});

describe('toIngressService', () => {
  it('fills the defaults of an older or minimal message', () => {
    const s = toIngressService(svc('a'))!;
    expect(s).toEqual({
      name: 'a', network: 'default', ports: [{ name: 'web', port: 80, targetPort: 8080, protocol: 'http' }], hostnames: [], pathPrefix: '',
      rackPolicy: 'prefer-local', affinity: 'none', healthPath: '', proxyProtocol: false,
      backends: [{ ip: '10.244.1.5', host: 'h1', rack: 'r1', datacenter: 'dc1', containerId: 'c-10.244.1.5' }],
    });
  });

  it('carries the routing fields and every protocol; a port of an unknown protocol is left out', () => {
    const s = toIngressService(svc('a', {
      hostnames: ['Shop.Example.com', '*.example.org'], path_prefix: '/api', affinity: 'client-ip', health_path: '/healthz', proxy_protocol: true, rack_policy: 'any',
      ports: [
        { name: 'dns', port: 53, target_port: 5353, protocol: 'udp' }, { name: 'db', port: 5432, target_port: 0, protocol: '' },
        { name: 'odd', port: 9, target_port: 9, protocol: 'sctp' },
      ],
    }))!;
    expect(s).toMatchObject({ hostnames: ['shop.example.com', '*.example.org'], pathPrefix: '/api', affinity: 'client-ip', healthPath: '/healthz', proxyProtocol: true, rackPolicy: 'any' });
    expect(s.ports).toEqual([{ name: 'dns', port: 53, targetPort: 5353, protocol: 'udp' }, { name: 'db', port: 5432, targetPort: 5432, protocol: 'tcp' }]);
  });

  it('a state without a service is skipped', () => {
    expect(toIngressService({ service: null, backends: [] })).toBeUndefined();
  });
});

describe('watchServices', () => {
  it('resumes from the initial revision and reports each state', () => {
    const seen: IngressState[] = [];
    let opts: { fromRevision?: number; onEvent(e: ServiceEvent): void } | undefined;
    const client = { watch: (_m: string, o: typeof opts) => ((opts = o), { revision: () => 0, stop() {} }) };
    const initial = applyServiceEvent(emptyState(), ev('SNAPSHOT', 42, [svc('saved')]));
    const w = watchServices(client as never, initial, (s) => seen.push(s), silentLogger);
    expect(opts!.fromRevision).toBe(42);
    expect(w.fromController).toBe(false);
    expect(names(w.state())).toEqual(['saved']);
    opts!.onEvent(ev('SERVICE_PUT', 43, [svc('new')]));
    expect(w.fromController).toBe(true);
    expect(names(w.state())).toEqual(['new', 'saved']);
    expect(seen.map((s) => s.revision)).toEqual([43]);
  });
});
