// Reading the ingress's L4 path on this host for `weft explain <client>
// <address>:<port>/<proto>` (ingress/l4/render.ts has the table's layout):
// the port's element in the `<proto>_svc` vmap (listen address . port) or
// `<proto>_any` (any local address), the class chain it jumps to, and that
// chain's backend map `be_<same suffix>`, whose elements for the port are
// `port . bucket -> backend`. Only reads; a table or element that is not
// there is the fact.
import { readFileSync } from 'node:fs';
import { openNftTable } from '../../../dataplane/nftables/table';
import { NFPROTO_IPV4 } from '../../../dataplane/nftables/wire';
import { addrPortHex, decodeAddrPort, DEFAULT_INGRESS_TABLE, portKeyHex } from '../../../dataplane/nftables/keys';
import type { IngressFact } from './facts';

/** The ingress's default table (weft ingress --nft-table). */
export const INGRESS_TABLE = DEFAULT_INGRESS_TABLE;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
/** An `inet_service` key alone: the port in 2 bytes. */
const portHex = (port: number) => port.toString(16).padStart(4, '0');

export function readIngressL4(table: string, listen: string, port: number, protocol: 'tcp' | 'udp', netns?: string): IngressFact['l4'] {
  try {
    const t = openNftTable({ name: table, family: NFPROTO_IPV4, ...(netns ? { netns } : {}) });
    try {
      const v = t.list((s) => s === `${protocol}_svc` || s === `${protocol}_any`);
      if (!v.exists) return { exists: false, backends: [] };
      const byAddr = v.elements.get(`${protocol}_svc`)?.get(addrPortHex(listen, port));
      const byAny = v.elements.get(`${protocol}_any`)?.get(portHex(port));
      const verdict = byAddr ?? byAny;
      if (!verdict?.startsWith('goto:')) return { exists: true, backends: [] };
      const chain = verdict.slice('goto:'.length);
      const map = chain.replace(/^lb_/, 'be_');
      const counts = new Map<string, number>();
      let buckets = 0;
      const prefix = portKeyHex(port);
      if (v.sets.has(map)) {
        t.eachElement(map, (key, data) => {
          if (!key.startsWith(prefix)) return;
          buckets++;
          const b = decodeAddrPort(data);
          if (b) counts.set(`${b.ip}:${b.port}`, (counts.get(`${b.ip}:${b.port}`) ?? 0) + 1);
        });
      }
      const backends = [...counts].map(([k, n]) => ({ ip: k.slice(0, k.lastIndexOf(':')), port: Number(k.slice(k.lastIndexOf(':') + 1)), buckets: n }))
        .sort((a, b) => b.buckets - a.buckets || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
      return { exists: true, chain, by: byAddr ? 'address' : 'any', backends, buckets };
    } finally {
      t.close();
    }
  } catch (e) {
    return { exists: false, error: message(e), backends: [] };
  }
}

/** "0100007F:1F90" (little-endian IPv4 : port, as /proc/net/tcp prints them) -> ["127.0.0.1", 8080]. */
function procAddr(a: string): [string, number] {
  const [ip, port] = a.split(':');
  const v4 = ip.length === 8 ? Buffer.from(ip, 'hex').reverse() : undefined;
  return [v4 ? [...v4].join('.') : ip.replace(/^0+$/, '::'), parseInt(port, 16)];
}

/**
 * This namespace's listening TCP socket for `listen`:`port`, bound to that
 * address or to any ("0.0.0.0:80"); undefined when none. /proc/net/tcp lists
 * the reading process's network namespace, which is the host's here.
 */
export function tcpListener(listen: string, port: number): string | undefined {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // TCP_LISTEN
      const [ip, p] = procAddr(f[1]);
      if (p !== port) continue;
      if (ip === listen || ip === '0.0.0.0' || ip === '::') return `${ip.includes(':') ? `[${ip}]` : ip}:${p}`;
    }
  }
  return undefined;
}
