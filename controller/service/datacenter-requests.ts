// Whole-request checks of the datacenter calls: every field's form, before
// any handler reads the store. What needs the store (is the host registered
// in that datacenter, is the endpoint inside a network) is the registry's
// to say, in the same compare-and-swap as the write (registry/datacenters.ts).
import type { CreateDatacenterRequest, DeleteDatacenterRequest, GatewayRequest } from '../api/proto';
import {
  canonicalWanEndpoint, checkHostName, checkListenPort, checkMtu, checkName, checkWanEndpoint, fail, must, show,
} from '../api/validate';
import { DEFAULT_WG_LISTEN_PORT, type DatacenterInput, MAX_GATEWAYS } from '../registry/datacenters';

type Networks = Array<{ name: string; cidr: string }>;

/** Against the networks as read for the request; the registry checks again against the config it writes under. */
function checkOptionalWan(v: unknown, field: string, networks: Networks): string {
  if (v === '' || v === undefined) return '';
  must(checkWanEndpoint(v, field, networks));
  return canonicalWanEndpoint(v as string);
}

const bool = (v: unknown, field: string): boolean => {
  if (v !== undefined && typeof v !== 'boolean') fail(`${field}: must be true or false`);
  return v === true;
};

export function checkCreateDatacenter(req: CreateDatacenterRequest, networks: Networks): DatacenterInput {
  must(checkName(req.name, 'name'));
  const specs = req.gateways ?? [];
  if (!Array.isArray(specs)) fail('gateways: must be a list');
  if (specs.length > MAX_GATEWAYS) fail(`gateways: has ${specs.length} entries (at most ${MAX_GATEWAYS})`);
  const seen = new Map<string, number>();
  const gateways = specs.map((g, i) => {
    const at = `gateways[${i}]`;
    if (!g || typeof g !== 'object') fail(`${at}: must be a gateway (host, wan_endpoint)`);
    must(checkHostName(g.host, `${at}.host`));
    const dup = seen.get(g.host);
    if (dup !== undefined) fail(`${at}.host: ${show(g.host)} is already gateways[${dup}]`);
    seen.set(g.host, i);
    return { host: g.host, wanEndpoint: checkOptionalWan(g.wan_endpoint, `${at}.wan_endpoint`, networks) };
  });
  const listenPort = req.listen_port ?? 0;
  must(checkListenPort(listenPort, 'listen_port'));
  const mtu = req.mtu ?? 0;
  must(checkMtu(mtu, 'mtu'));
  return {
    name: req.name,
    gateways,
    listenPort: listenPort || DEFAULT_WG_LISTEN_PORT,
    mtu,
    mesh: bool(req.mesh, 'mesh'),
    allowSingleGateway: bool(req.allow_single_gateway, 'allow_single_gateway'),
  };
}

export function checkDeleteDatacenter(req: DeleteDatacenterRequest): { name: string; force: boolean } {
  must(checkName(req.name, 'name'));
  return { name: req.name, force: bool(req.force, 'force') };
}

/** AddGateway takes a WAN endpoint; RemoveGateway and DrainGateway refuse one, so a mistaken call does not look like it set it. */
export function checkGatewayRequest(
  req: GatewayRequest, opts: { wan: boolean }, networks: Networks,
): { datacenter: string; host: string; wanEndpoint: string } {
  must(checkName(req.datacenter, 'datacenter'));
  must(checkHostName(req.host, 'host'));
  if (!opts.wan && (req.wan_endpoint ?? '') !== '') fail('wan_endpoint: only AddGateway sets a WAN endpoint');
  return { datacenter: req.datacenter, host: req.host, wanEndpoint: opts.wan ? checkOptionalWan(req.wan_endpoint, 'wan_endpoint', networks) : '' };
}
