// Reaching the controller as this host does: the credentials the agent keeps
// in its state dir (loadCredentials, the agent's own reader), the agent's
// --server, the one API client. One GetStatus says whether the controller
// answers and accepts this host's certificate, and its HTTP/2 date header
// gives the clock sample (clock.ts); the first event of a topology watch
// says which networks this host holds subnets in and the cluster's MTU.
import * as grpc from '@grpc/grpc-js';
import { connectController, grpcCode } from '../../../controller/api/client/client';
import { channelCredentials, loadCredentials, HOST_CERT_FILE, HOST_KEY_FILE, type Credentials } from '../../../controller/api/client/credentials';
import { certProblemMessage, certProblemOf } from '../../../controller/api/client/server-cert';
import type { ResponseOf } from '../../../controller/api/proto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { applyTopologyEvent, emptyTopology } from '../sync/topology';
import type { Topology } from '../state/types';
import type { ClockSample } from './clock';
import { fail, pass, type Finding } from './finding';

export type CredentialsFacts = { credentials: Credentials } | { missing: string } | { error: string };

export type ControllerFacts = {
  server: string;
  status?: ResponseOf<'GetStatus'>;
  /** The call's failure: gRPC code name, details, and which certificate problem it is, if one. */
  error?: { code: string; details: string; certProblem?: string };
  clock?: ClockSample;
  topology?: Topology;
  /** The cluster's configured overlay MTU (0: derived from the underlay). */
  clusterMtu?: number;
};

/**
 * loadCredentials completes or drops a renewal a crash left half-stored
 * (host.key.next, host.crt.next), as the agent does at start. A running
 * agent stores a renewal in a few milliseconds, so while such files exist
 * the doctor first waits for them to go, rather than finish the agent's
 * renewal under it.
 */
async function renewalSettled(stateDir: string, waitMs = 2000): Promise<void> {
  const pending = () => [HOST_KEY_FILE, HOST_CERT_FILE].some((f) => existsSync(join(stateDir, `${f}.next`)));
  for (const until = Date.now() + waitMs; pending() && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
}

export async function readCredentials(stateDir: string): Promise<CredentialsFacts> {
  try {
    await renewalSettled(stateDir);
    const c = await loadCredentials(stateDir);
    return c ? { credentials: c } : { missing: join(stateDir, HOST_CERT_FILE) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** grpc-js's connection failure text without its empty "Resolution note:" tail. */
export function tidyDetails(d: string): string {
  return d.replace(/\s*Resolution note:\s*$/, '').replace(/Last error: Error: /, 'last error: ').trim();
}

/** Records the `date` header of each answer with the time the call started and the time the header arrived. */
function dateInterceptor(seen: (s: ClockSample) => void): grpc.Interceptor {
  return (options, nextCall) => {
    let sentAt = 0;
    const requester = new grpc.RequesterBuilder()
      .withStart((metadata, listener, next) => {
        sentAt = Date.now();
        next(metadata, new grpc.ListenerBuilder().withOnReceiveMetadata((md, nxt) => {
          const d = md.get('date')[0];
          if (typeof d === 'string') seen({ date: d, sentAt, receivedAt: Date.now() });
          nxt(md);
        }).build());
      })
      .build();
    return new grpc.InterceptingCall(nextCall(options), requester);
  };
}

export async function askController(server: string, credentials: Credentials, stateDir: string, timeoutMs = 5000): Promise<ControllerFacts> {
  const facts: ControllerFacts = { server };
  let sample: ClockSample | undefined;
  const client = connectController({
    server, credentials: channelCredentials(credentials), callTimeoutMs: timeoutMs, stateDir,
    // only the first answer's header: the watch below answers too
    channelOptions: { interceptors: [dateInterceptor((s) => (sample ??= s))] },
  });
  try {
    try {
      facts.status = await client.call('GetStatus', {});
      if (sample) facts.clock = sample;
    } catch (err) {
      const e = err as { details?: string; message: string };
      const problem = certProblemOf(err);
      facts.error = { code: grpcCode(err), details: tidyDetails(e.details || e.message), ...(problem ? { certProblem: problem } : {}) };
      return facts;
    }
    const first = await new Promise<ResponseOf<'WatchTopology'> | undefined>((resolve) => {
      const timer = setTimeout(() => {
        w.stop();
        resolve(undefined);
      }, timeoutMs);
      const w = client.watch('WatchTopology', {
        onEvent: (ev) => {
          clearTimeout(timer);
          w.stop();
          resolve(ev);
        },
      });
    });
    if (first?.kind === 'SNAPSHOT') {
      facts.topology = applyTopologyEvent(emptyTopology(), first);
      facts.clusterMtu = first.config?.mtu ?? 0;
    }
    return facts;
  } finally {
    client.close();
  }
}

/** This host's networks in the topology: those it holds a subnet in. */
export function hostNetworksOf(t: Topology, hostName: string): Array<{ network: string; vni: number; subnet: string }> {
  const self = t.hosts.find((h) => h.name === hostName);
  if (!self) return [];
  return t.networks.filter((n) => self.subnets[n.name]).map((n) => ({ network: n.name, vni: n.vni, subnet: self.subnets[n.name] }));
}

export function judgeController(creds: CredentialsFacts, f: ControllerFacts | undefined, stateDir: string): Finding[] {
  if ('missing' in creds) {
    return [fail('controller', 'credentials', `this host has not joined the cluster: no ${creds.missing}`,
      'run weft agent with the join command weft token create prints, or give --state-dir as the agent has it')];
  }
  if ('error' in creds) return [fail('controller', 'credentials', `the credentials in ${stateDir} cannot be used: ${creds.error}`, 'do what the message says, then run weft doctor again')];
  const out = [pass('controller', 'credentials', `host ${creds.credentials.hostName} holds a certificate from the cluster CA (${stateDir})`)];
  if (!f) return out;
  if (f.status) {
    const s = f.status;
    const leader = s.leader ? 'itself' : s.leader_id || 'none known';
    out.push(pass('controller', 'reachable', `controller ${s.controller_id} at ${f.server} answers host ${creds.credentials.hostName}: version ${s.version}, leader ${leader}, store ${s.store}, revision ${s.revision}`));
    if (!f.topology) {
      out.push(fail('controller', 'topology', `the controller at ${f.server} sent no topology snapshot within the timeout`, 'look at the controller log; a controller that cannot read its store answers no watch'));
    } else if (!f.topology.hosts.some((h) => h.name === creds.credentials.hostName)) {
      out.push(fail('controller', 'registered', `host ${creds.credentials.hostName} is not in the controller's topology (revision ${f.topology.revision}): it was deleted or never registered`,
        'start the agent (it registers at start); a host deleted with weft host delete joins again with a token'));
    } else {
      out.push(pass('controller', 'registered', `host ${creds.credentials.hostName} is in the topology (revision ${f.topology.revision})`));
    }
    return out;
  }
  const e = f.error ?? { code: 'UNKNOWN', details: 'no answer' };
  if (e.certProblem) {
    const why = certProblemMessage(e.certProblem as 'name' | 'ca' | 'expired', f.server, { trusted: `the cluster CA in ${stateDir}`, stateDir });
    out.push(fail('controller', 'reachable', why, 'see the message: --server must be a name the controller\'s certificate holds, of this cluster'));
  } else if (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED') {
    out.push(fail('controller', 'reachable', `the controller at ${f.server} refuses host ${creds.credentials.hostName}: ${e.code}: ${e.details}`,
      'a revoked certificate or a deleted host: join again with a token from weft token create (after removing host.crt from the state dir)'));
  } else {
    out.push(fail('controller', 'reachable', `cannot reach the controller at ${f.server}: ${e.code}: ${e.details}`,
      `check that the controller runs (systemctl status weft-controller) and that ${f.server} is reachable from this host (routes, firewall; --server as the agent has it)`));
  }
  return out;
}
