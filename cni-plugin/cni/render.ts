// What the runtime reads on stdout: results, errors and version info as JSON
// in the shape of the cniVersion the config asked for. The runtime (and every
// later plugin in the chain, as prevResult) decodes it with that version's
// types, so fields a version does not define are left out.
import { SUPPORTED_VERSIONS, type CniError, type CniResult } from './types';
import { compareVersions } from './parse';

type Json = Record<string, unknown>;

function familyOf(address: string): '4' | '6' {
  return address.includes(':') ? '6' : '4';
}

/** Drops undefined members so the output never carries `"x": null`. */
function compact(o: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** The result as a plain object for `version` (one of SUPPORTED_VERSIONS). */
export function resultJson(result: CniResult, version: string): Json {
  const v1 = compareVersions(version, '1.0.0') >= 0;
  const v11 = compareVersions(version, '1.1.0') >= 0;
  const out: Json = { cniVersion: version };
  if (result.interfaces?.length) {
    out.interfaces = result.interfaces.map((i) =>
      compact({ name: i.name, mac: i.mac, mtu: v11 ? i.mtu : undefined, sandbox: i.sandbox }),
    );
  }
  if (result.ips?.length) {
    // Before 1.0.0 every address carried its family as a string.
    out.ips = result.ips.map((ip) =>
      compact({
        version: v1 ? undefined : familyOf(ip.address),
        address: ip.address,
        gateway: ip.gateway,
        interface: ip.interface,
      }),
    );
  }
  if (result.routes?.length) {
    out.routes = result.routes.map((r) =>
      compact({ dst: r.dst, gw: r.gw, mtu: v11 ? r.mtu : undefined, priority: v11 ? r.priority : undefined }),
    );
  }
  const dns = result.dns ? compact({ ...result.dns }) : {};
  // 0.x results always carried a dns object (libcni wrote `"dns":{}`); 1.x omits an empty one.
  if (Object.keys(dns).length || !v1) out.dns = dns;
  return out;
}

export function renderResult(result: CniResult, version: string): string {
  return `${JSON.stringify(resultJson(result, version))}\n`;
}

export function renderError(err: Pick<CniError, 'cniCode' | 'message' | 'details'>, version: string): string {
  const o: Json = { cniVersion: version, code: err.cniCode, msg: err.message };
  if (err.details) o.details = err.details;
  return `${JSON.stringify(o)}\n`;
}

/** The VERSION answer; the same text the shim prints without asking the agent. */
export function renderVersion(): string {
  return `${JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS })}\n`;
}
