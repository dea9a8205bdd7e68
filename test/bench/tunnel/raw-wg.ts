// The reference the tunnel bench measures weft against: WireGuard between two
// datacenters set up by hand, as an operator would without weft. One
// wireguard-go per gateway (Debian's, the same binary weft runs), configured
// with `wg set`, plain routes around it:
//
//   container (10.98.1.2/24, MTU 1440) ─veth─ host h1 (10.98.1.1)
//     ─ rack ─▶ gateway g1a: route 10.98.2.0/24 dev <wg> ── WAN (dc router,
//     WAN router, dc router) ──▶ gateway g2a: route 10.98.2.0/24 via h2's
//     underlay address ─ rack ─▶ h2 ─veth─ container (10.98.2.2/24)
//
// Each peer's allowed IPs are the other datacenter's container subnet, its
// endpoint the other gateway's underlay address. The hops inside a
// datacenter are routed, not in VXLAN (weft nests VXLAN there and inside
// WireGuard; that cost is part of what the bench shows). WireGuard MTU 1440
// (underlay 1500 − 60, as weft derives for IPv4), and the containers take
// the same MTU so TCP never needs fragmentation or clamping on this path.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../helpers/wait';
import type { Lab, LabHost, LabProcess } from '../../lab/lab';

export const RAW_WG_PORT = 51900;
export const RAW_MTU = 1440;
/** Container subnets of the hand-made path; far from weft's pools (10.244.0.0/16 by default). */
const SUBNET = (k: number) => `10.98.${k}`;

export type RawSide = { host: LabHost; ctrNs: string; addr: string };
export type RawGateway = { host: LabHost; dev: string; proc: LabProcess };
export type RawPath = { src: RawSide; dst: RawSide; gateways: [RawGateway, RawGateway] };

const wg = (lab: Lab, ns: string, args: string[], input?: string) => lab.exec(ns, 'wg', args, { input }).stdout.trim();

/**
 * Build the path between `hosts[0]`'s and `hosts[1]`'s containers through
 * `gateways[0]` and `gateways[1]` (same index = same datacenter). `tag` makes
 * the WireGuard device names unique on the machine: wireguard-go's UAPI socket
 * (/var/run/wireguard/<dev>.sock) is one path for every namespace.
 */
export async function buildRawWireGuard(lab: Lab, hosts: [LabHost, LabHost], gateways: [LabHost, LabHost], tag: string, dir: string): Promise<RawPath> {
  const gws: RawGateway[] = [];
  for (const [i, g] of gateways.entries()) {
    const dev = `${tag}w${i + 1}`;
    if (dev.length > 15) throw new Error(`device name ${dev} is longer than 15 characters`);
    lab.exec(g.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // foreground, so the lab owns the process and its teardown stops it
    const proc = lab.spawn(g.netns, 'wireguard-go', ['-f', dev], { env: { LOG_LEVEL: 'error', WG_PROCESS_FOREGROUND: '1' }, logFile: join(dir, `${dev}.log`) });
    await waitFor(`wireguard-go ${dev} in ${g.name} to answer`, () => {
      if (proc.exited) throw new Error(`wireguard-go ${dev} in ${g.name} exited`);
      return lab.exec(g.netns, 'wg', ['show', dev], { check: false }).status === 0;
    }, 10_000, 50);
    gws.push({ host: g, dev, proc });
  }
  const keys = gws.map((g) => {
    const priv = wg(lab, g.host.netns, ['genkey']);
    const file = join(dir, `${g.dev}.key`);
    writeFileSync(file, priv + '\n', { mode: 0o600 });
    return { file, pub: wg(lab, g.host.netns, ['pubkey'], priv + '\n') };
  });
  gws.forEach((g, i) => {
    const o = 1 - i;
    const other = gws[o];
    wg(lab, g.host.netns, ['set', g.dev, 'listen-port', String(RAW_WG_PORT), 'private-key', keys[i].file,
      'peer', keys[o].pub, 'endpoint', `${other.host.underlayIp}:${RAW_WG_PORT}`, 'allowed-ips', `${SUBNET(o + 1)}.0/24`]);
    lab.exec(g.host.netns, 'ip', ['-batch', '-'], {
      input: [
        `link set ${g.dev} mtu ${RAW_MTU} up`,
        `route replace ${SUBNET(o + 1)}.0/24 dev ${g.dev}`,
        `route replace ${SUBNET(i + 1)}.0/24 via ${hosts[i].underlayIp}`,
      ].join('\n') + '\n',
    });
  });
  const sides = hosts.map((h, i) => {
    const k = i + 1;
    const ctrNs = lab.addContainerNetns(h, 'rawwg').slice('/run/netns/'.length);
    lab.exec(h.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    lab.exec(h.netns, 'ip', ['-batch', '-'], {
      input: [
        `link add wtrwg0 mtu ${RAW_MTU} type veth peer name eth0 netns ${ctrNs}`,
        `addr add ${SUBNET(k)}.1/24 dev wtrwg0`,
        'link set wtrwg0 up',
        `route replace ${SUBNET(2 - i)}.0/24 via ${gateways[i].underlayIp}`,
      ].join('\n') + '\n',
    });
    lab.exec(ctrNs, 'ip', ['-batch', '-'], {
      input: ['link set lo up', `addr add ${SUBNET(k)}.2/24 dev eth0`, `link set eth0 mtu ${RAW_MTU} up`, `route add default via ${SUBNET(k)}.1`].join('\n') + '\n',
    });
    return { host: h, ctrNs, addr: `${SUBNET(k)}.2` };
  });
  return { src: sides[0], dst: sides[1], gateways: [gws[0], gws[1]] };
}

/** Seconds since the last handshake of the gateway's only peer (Infinity: none yet). */
export function handshakeAge(lab: Lab, g: RawGateway): number {
  const out = lab.exec(g.host.netns, 'wg', ['show', g.dev, 'latest-handshakes']).stdout.trim();
  const t = Number(out.split(/\s+/)[1] ?? 0);
  return t > 0 ? Date.now() / 1000 - t : Infinity;
}
