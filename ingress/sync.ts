// The ingress's view of the controller: the one client's resumable
// WatchServices stream folded into a map of IngressService (model.ts).
// SNAPSHOT replaces everything, SERVICE_PUT upserts one service, SERVICE_DELETE
// removes one. The fold is pure (applyServiceEvent), so it is tested without
// a controller; watchServices wires it to the client.
//
// While the controller is away the watch keeps the last state and resumes
// from its revision; nothing here ever empties the state because of an
// outage. A cold start hands in the state read from the state file, and the
// watch resumes from that state's revision (the controller answers with a
// SNAPSHOT when it can no longer resume from there).
import type { ControllerClient, Watch } from '../controller/api/client/client';
import type { ServiceEvent, ServiceState } from '../controller/api/proto';
import type { Logger } from '../controller/common/log';
import type { Affinity, IngressPort, IngressService, PortProtocol, RackPolicy } from './model';

/** Every service the ingress serves, as of one controller revision. */
export type IngressState = {
  revision: number;
  services: ReadonlyMap<string, IngressService>;
};

export const emptyState = (): IngressState => ({ revision: 0, services: new Map() });

const PROTOCOLS: readonly PortProtocol[] = ['http', 'tcp', 'udp'];

/** One ServiceState message as the ingress's plain type; undefined when it carries no service. Ports of a protocol this ingress does not know are left out. */
export function toIngressService(ss: ServiceState): IngressService | undefined {
  const svc = ss.service;
  if (!svc?.name) return undefined;
  const ports: IngressPort[] = [];
  for (const p of svc.ports ?? []) {
    const protocol = (p.protocol || 'tcp').toLowerCase() as PortProtocol;
    if (!PROTOCOLS.includes(protocol)) continue;
    ports.push({ name: p.name, port: p.port, targetPort: p.target_port || p.port, protocol });
  }
  const rackPolicy: RackPolicy = svc.rack_policy === 'any' ? 'any' : 'prefer-local';
  const affinity: Affinity = svc.affinity === 'client-ip' ? 'client-ip' : 'none';
  const backends = (ss.backends ?? [])
    .map((b) => ({ ip: b.ip, host: b.host, rack: b.rack, datacenter: b.datacenter, containerId: b.container_id }))
    .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  return {
    name: svc.name,
    network: svc.network,
    ports,
    hostnames: (svc.hostnames ?? []).map((h) => h.toLowerCase()),
    pathPrefix: svc.path_prefix ?? '',
    rackPolicy,
    affinity,
    healthPath: svc.health_path ?? '',
    proxyProtocol: svc.proxy_protocol ?? false,
    backends,
  };
}

/** The state after one watch event; the input is never changed. Unknown kinds change nothing but the revision. */
export function applyServiceEvent(state: IngressState, ev: ServiceEvent): IngressState {
  const revision = Number(ev.revision);
  switch (ev.kind) {
    case 'SNAPSHOT': {
      const services = new Map<string, IngressService>();
      for (const ss of ev.services ?? []) {
        const s = toIngressService(ss);
        if (s) services.set(s.name, s);
      }
      return { revision, services };
    }
    case 'SERVICE_PUT': {
      const services = new Map(state.services);
      for (const ss of ev.services ?? []) {
        const s = toIngressService(ss);
        if (s) services.set(s.name, s);
      }
      return { revision: Math.max(state.revision, revision), services };
    }
    case 'SERVICE_DELETE': {
      const services = new Map(state.services);
      services.delete(ev.service_name);
      return { revision: Math.max(state.revision, revision), services };
    }
    default:
      return { revision: Math.max(state.revision, revision), services: state.services };
  }
}

export type ServiceSync = {
  /** The last state applied (the initial one until the controller answers). */
  state(): IngressState;
  /** True once the controller has sent a snapshot or a change on this run. */
  readonly fromController: boolean;
  stop(): void;
};

/**
 * Watches the controller's services from `initial` (the state file's, or
 * empty) and calls `onState` after every event that applied. A handler that
 * throws is logged by the client and the watch goes on.
 */
export function watchServices(
  client: Pick<ControllerClient, 'watch'>,
  initial: IngressState,
  onState: (s: IngressState, ev: { kind: string; revision: number }) => void,
  log: Logger,
): ServiceSync {
  let state = initial;
  let fromController = false;
  const watch: Watch = client.watch('WatchServices', {
    fromRevision: initial.revision,
    onEvent(ev) {
      state = applyServiceEvent(state, ev);
      fromController = true;
      log.debug({ kind: ev.kind, revision: ev.revision, services: state.services.size }, 'services event');
      onState(state, { kind: ev.kind, revision: Number(ev.revision) });
    },
  });
  return {
    state: () => state,
    get fromController() {
      return fromController;
    },
    stop: () => watch.stop(),
  };
}
