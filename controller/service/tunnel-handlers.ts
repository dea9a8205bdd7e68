// The calls of WireGuard key rotation and tunnel status. A host rotating its
// key drains its own gateway entries, registers its new public key and
// activates them again, each for itself only (the caller's certificate must
// name the host); an operator asks hosts to rotate (RotateWireGuardKeys) and
// reads what the agents report (ListTunnels). The private key never comes
// here: only public keys and reports do.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import type { ClusterConfig } from '../ipam';
import { listDatacenters, setOwnGatewayState } from '../registry/datacenters';
import { type HostRecord, listHostReports, listHosts, requestKeyRotation, setHostWireGuardKey } from '../registry/hosts';
import { HostConflictError } from '../registry/errors';
import type { Store } from '../store/types';
import type * as pb from '../api/proto';
import { checkGatewayState, checkHostName, checkWgPublicKey, fail, must } from '../api/validate';
import type { Identity } from './caller';
import { tunnelView } from './tunnel-view';

type Who = Exclude<Identity, null>;
type Unary = <Req, Res>(method: string, auth: 'admin' | 'host', fn: (req: Req, who: Who | null) => Promise<Res>) => grpc.handleUnaryCall<Req, Res>;

export type TunnelHandlerDeps = {
  store: Store;
  logger: Logger;
  loadConfig: (store: Store) => Promise<ClusterConfig>;
  /** ms since the epoch. */
  now: () => number;
  /** The service's unary wrapper: authorization, then the handler, errors mapped to statuses. */
  unary: Unary;
  /** The service's check that a host acts only on itself (logs and refuses otherwise). */
  mustBeSelf: (method: string, who: Who | null, host: string, field: string) => void;
};

/** At most this many hosts named in one RotateWireGuardKeys (`--all` has no limit). */
export const MAX_ROTATE_HOSTS = 1024;

export function tunnelHandlers(deps: TunnelHandlerDeps): grpc.UntypedServiceImplementation {
  const { store, logger, unary, mustBeSelf } = deps;

  const SetOwnGatewayState = unary<pb.SetOwnGatewayStateRequest, pb.SetOwnGatewayStateResponse>('SetOwnGatewayState', 'host', async (req, who) => {
    must(checkHostName(req.name, 'name'));
    must(checkGatewayState(req.state, 'state'));
    mustBeSelf('SetOwnGatewayState', who, req.name, 'name');
    const r = await setOwnGatewayState(store, req.name, req.state as 'active' | 'draining');
    if (r.datacenters.length > 0) logger.info({ method: 'SetOwnGatewayState', host: req.name, state: req.state, datacenters: r.datacenters }, 'gateway set its own state');
    return r;
  });

  const SetWireGuardKey = unary<pb.SetWireGuardKeyRequest, pb.SetWireGuardKeyResponse>('SetWireGuardKey', 'host', async (req, who) => {
    must(checkHostName(req.name, 'name'));
    if (req.wg_public_key === '') fail('wg_public_key: is required (a host gives up WireGuard by registering without a key)');
    must(checkWgPublicKey(req.wg_public_key, 'wg_public_key'));
    mustBeSelf('SetWireGuardKey', who, req.name, 'name');
    const config = await deps.loadConfig(store);
    const now = deps.now();
    try {
      const { revision } = await setHostWireGuardKey(store, req.name, req.wg_public_key, {
        now, goneAfterMs: (config.leaseTtlSeconds + config.reclaimGraceSeconds) * 1000,
      });
      // The public key only: it is what every peer is configured with, and the private key never reaches here.
      logger.info({ method: 'SetWireGuardKey', host: req.name, wgPublicKey: req.wg_public_key }, 'host changed its WireGuard key');
      return { revision };
    } catch (err) {
      if (err instanceof HostConflictError) {
        logger.warn({ method: 'SetWireGuardKey', host: req.name, field: err.field, holder: err.holder }, 'refused: host claims a value another host holds');
      }
      throw err;
    }
  });

  const RotateWireGuardKeys = unary<pb.RotateWireGuardKeysRequest, pb.RotateWireGuardKeysResponse>('RotateWireGuardKeys', 'admin', async (req) => {
    const named = req.hosts ?? [];
    if (!Array.isArray(named)) fail('hosts: must be a list');
    if (req.all && named.length > 0) fail('hosts: must be empty with all (every registered host)');
    if (!req.all && named.length === 0) fail('hosts: name at least one host, or set all');
    if (named.length > MAX_ROTATE_HOSTS) fail(`hosts: has ${named.length} entries (at most ${MAX_ROTATE_HOSTS}; use all)`);
    named.forEach((h, i) => must(checkHostName(h, `hosts[${i}]`)));
    const names = req.all ? (await listHosts(store)).map((h: HostRecord) => h.name) : [...new Set(named)];
    const r = await requestKeyRotation(store, names);
    logger.info({ method: 'RotateWireGuardKeys', hosts: r.hosts.length, all: req.all }, 'asked hosts to rotate their WireGuard keys');
    return { hosts: r.hosts.map((h) => ({ host: h.host, wg_key_rotation: h.generation })), revision: r.revision };
  });

  const ListTunnels = unary<pb.ListTunnelsRequest, pb.ListTunnelsResponse>('ListTunnels', 'admin', async () => {
    const { datacenters } = await listDatacenters(store);
    const hosts = new Map((await listHosts(store)).map((h) => [h.name, h]));
    const reports = await listHostReports(store);
    return tunnelView({ datacenters, hosts, reports, now: deps.now() });
  });

  return { SetOwnGatewayState, SetWireGuardKey, RotateWireGuardKeys, ListTunnels } as grpc.UntypedServiceImplementation;
}
