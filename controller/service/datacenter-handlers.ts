// The datacenter calls: an administrator creates, deletes and lists
// datacenters and adds, removes and drains their gateways. Hosts may list
// (they learn the same from WatchTopology); ingresses may not. Every write
// goes through the registry's compare-and-swap (registry/datacenters.ts).
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log';
import { formatCidr } from '../common/cidr';
import type { ClusterConfig } from '../ipam';
import { LEASES_PREFIX, decodeLeaseRecord, parseLeaseKey } from '../ipam/records';
import {
  type DatacenterRecord, addGateway, createDatacenter, deleteDatacenter, drainGateway, listDatacenters, removeGateway,
} from '../registry/datacenters';
import { type HostRecord, decodeHost } from '../registry/hosts';
import { HOSTS_PREFIX, nameFromKey } from '../registry/keys';
import type { Store } from '../store/types';
import type * as pb from '../api/proto';
import { checkCreateDatacenter, checkDeleteDatacenter, checkGatewayRequest } from './datacenter-requests';
import { datacenterMessage, poolsByDatacenter } from './datacenter-view';

type Unary = <Req, Res>(method: string, auth: 'admin' | 'any', fn: (req: Req) => Promise<Res>) => grpc.handleUnaryCall<Req, Res>;

export type DatacenterHandlerDeps = {
  store: Store;
  logger: Logger;
  loadConfig: (store: Store) => Promise<ClusterConfig>;
  /** The service's unary wrapper: authorization, then the handler, errors mapped to statuses. */
  unary: Unary;
};

/** Everything a datacenter message is joined from, read now: hosts, their subnets, the pools. */
async function readFacts(store: Store, loadConfig: DatacenterHandlerDeps['loadConfig']) {
  const hosts = new Map<string, HostRecord>();
  for (const kv of (await store.range(HOSTS_PREFIX)).kvs) {
    if (!nameFromKey(HOSTS_PREFIX, kv.key)) continue;
    try {
      const h = decodeHost(kv.key, kv.value);
      hosts.set(h.name, h);
    } catch {
      // unreadable: not a host, as for every watcher
    }
  }
  const subnets = new Map<string, Array<{ network: string; subnet: string }>>();
  for (const kv of (await store.range(LEASES_PREFIX)).kvs) {
    try {
      const { network, subnet } = parseLeaseKey(kv.key);
      const { host } = decodeLeaseRecord(kv.key, kv.value);
      const list = subnets.get(host) ?? [];
      list.push({ network, subnet: formatCidr(subnet) });
      subnets.set(host, list);
    } catch {
      // not a lease the overlay could use
    }
  }
  const pools = poolsByDatacenter(await loadConfig(store));
  const members = new Map<string, HostRecord[]>();
  for (const h of [...hosts.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (h.datacenter === '') continue;
    const list = members.get(h.datacenter) ?? [];
    list.push(h);
    members.set(h.datacenter, list);
  }
  return {
    members,
    message: (dc: DatacenterRecord): pb.Datacenter =>
      datacenterMessage(dc, {
        host: (n) => hosts.get(n),
        members: members.get(dc.name) ?? [],
        subnetsOf: (n) => subnets.get(n) ?? [],
        pools: pools.get(dc.name),
      }),
  };
}

export function datacenterHandlers(deps: DatacenterHandlerDeps): grpc.UntypedServiceImplementation {
  const { store, logger, unary, loadConfig } = deps;

  const reply = async (r: { datacenter: DatacenterRecord; revision: number }): Promise<pb.DatacenterReply> => ({
    datacenter: (await readFacts(store, loadConfig)).message(r.datacenter),
    revision: r.revision,
  });

  const CreateDatacenter = unary<pb.CreateDatacenterRequest, pb.DatacenterReply>('CreateDatacenter', 'admin', async (req) => {
    const input = checkCreateDatacenter(req, (await loadConfig(store)).networks);
    const r = await createDatacenter(store, input);
    logger.info({ method: 'CreateDatacenter', datacenter: input.name, gateways: r.datacenter.gateways.map((g) => g.host) }, 'datacenter created');
    return reply(r);
  });

  const DeleteDatacenter = unary<pb.DeleteDatacenterRequest, pb.DeleteDatacenterResponse>('DeleteDatacenter', 'admin', async (req) => {
    const { name, force } = checkDeleteDatacenter(req);
    const r = await deleteDatacenter(store, name, { force });
    if (r.deleted) logger.info({ method: 'DeleteDatacenter', datacenter: name, force }, 'datacenter deleted');
    return r;
  });

  const ListDatacenters = unary<pb.ListDatacentersRequest, pb.ListDatacentersResponse>('ListDatacenters', 'any', async () => {
    const { datacenters, revision } = await listDatacenters(store);
    const facts = await readFacts(store, loadConfig);
    const declared = new Set(datacenters.map((d) => d.name));
    const undeclared: Record<string, number> = {};
    for (const [dc, hosts] of facts.members) if (!declared.has(dc)) undeclared[dc] = hosts.length;
    return { datacenters: datacenters.map(facts.message), undeclared, revision };
  });

  function gatewayCall(method: 'AddGateway' | 'RemoveGateway' | 'DrainGateway') {
    return unary<pb.GatewayRequest, pb.DatacenterReply>(method, 'admin', async (req) => {
      const g = checkGatewayRequest(req, { wan: method === 'AddGateway' }, (await loadConfig(store)).networks);
      const r =
        method === 'AddGateway' ? await addGateway(store, g.datacenter, g)
          : method === 'RemoveGateway' ? await removeGateway(store, g.datacenter, g.host)
            : await drainGateway(store, g.datacenter, g.host);
      const now = r.datacenter.gateways.find((x) => x.host === g.host);
      logger.info({ method, datacenter: g.datacenter, host: g.host, wanEndpoint: now?.wanEndpoint, state: now?.state ?? 'removed' }, 'datacenter gateway changed');
      return reply(r);
    });
  }

  return {
    CreateDatacenter, DeleteDatacenter, ListDatacenters,
    AddGateway: gatewayCall('AddGateway'), RemoveGateway: gatewayCall('RemoveGateway'), DrainGateway: gatewayCall('DrainGateway'),
  } as grpc.UntypedServiceImplementation;
}
