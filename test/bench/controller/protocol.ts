// What the fan-out bench's parent and its watcher processes say to each
// other over IPC, and what both sides use to reach the controller.
import type { ChannelOptions } from '@grpc/grpc-js';
import { clientChannelOptions } from '../../../controller/api/client/client';

export type Mode = 'mtls' | 'insecure';

export type ToChild =
  | { cmd: 'setup'; target: string; mode: Mode; caDir: string; hosts: Array<{ name: string; n: number }> }
  | { cmd: 'watch'; timeoutMs: number }
  | { cmd: 'collect'; host: string; timeoutMs: number }
  | { cmd: 'close' };

export type Arrival = { watcher: string; ns: string; subnets: string } | { watcher: string; missing: string };

export type FromChild =
  | { ok: 'setup'; certsMs: number; registerMs: number }
  | { ok: 'watching'; snapshotMin: number; snapshotMax: number }
  | { ok: 'collected'; host: string; arrivals: Arrival[] }
  | { error: string };

/** Host n's registration: a unique underlay address and VTEP MAC, every network. */
export function hostRequest(name: string, n: number) {
  return {
    name,
    underlay_ip: `172.20.${Math.floor(n / 250)}.${(n % 250) + 1}`,
    vtep_mac: `02:00:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`,
    rack: `r${n % 20}`,
    datacenter: 'dc1',
    wg_public_key: '',
    agent_version: 'bench',
    networks: [] as string[],
  };
}

/**
 * A local subchannel pool: channels never share a connection, so N hosts are
 * N connections. The TLS name is the serving certificate's "localhost" (the
 * daemon always includes it), so Node does not warn about an IP as SNI.
 */
export function channelOptions(mode: Mode): ChannelOptions {
  return mode === 'mtls'
    ? { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'localhost' }
    : { 'grpc.use_local_subchannel_pool': 1 };
}

/** A simulated host's channel: the bench's transport above, with the agent's own options (keepalive, backoff, receive window), so it costs the controller what an agent does. */
export function hostChannelOptions(mode: Mode): ChannelOptions {
  return { ...channelOptions(mode), ...clientChannelOptions() };
}
