// How the controller's gRPC server treats its connections.
//
// Keepalive: a host that crashed or lost its network leaves a connection
// that looks open (no FIN, no RST) and a watch stream that holds its queue
// and its HTTP/2 and TLS buffers. The server pings every connection every
// KEEPALIVE.timeMs and closes one whose ping is not answered within
// KEEPALIVE.timeoutMs, so a dead peer is gone within time + timeout: 30 s,
// under three heartbeat intervals (a host heartbeats every lease TTL / 3,
// 20 s by default). Live agents ping the server on the same schedule
// (controller/api/client), which finds a dead controller the same way.
//
// The pings cost the controller one small frame per connection per 20 s:
// 250 a second at 5,000 hosts.
//
// Channelz (grpc-js's introspection service) is off: weft does not serve it,
// yet grpc-js tracks every connection and call for it when it is on.
import type * as grpc from '@grpc/grpc-js';

export type Keepalive = { timeMs: number; timeoutMs: number };

export const KEEPALIVE: Keepalive = { timeMs: 20_000, timeoutMs: 10_000 };

export function serverOptions(keepalive: Keepalive = KEEPALIVE): grpc.ServerOptions {
  return {
    'grpc.keepalive_time_ms': keepalive.timeMs,
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
    'grpc.enable_channelz': 0,
  };
}
