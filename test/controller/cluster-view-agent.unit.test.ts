// The agent's half of the heartbeat report: its metrics keep the last
// reconcile's summary, and the heartbeat loop sends it with every heartbeat;
// a report that cannot be made never holds a heartbeat back.
import { afterEach, describe, expect, it } from 'vitest';
import { createAgentMetrics } from '../../cni-plugin/agent/metrics';
import type { HeartbeatReport } from '../../cni-plugin/agent/state/types';
import type { ReconcileResult } from '../../cni-plugin/agent/host/overlay';
import type { AgentClient, HeartbeatResult, HostRegistration, Registration } from '../../cni-plugin/agent/sync/controller';
import { type HeartbeatLoop, runHeartbeats } from '../../cni-plugin/agent/sync/heartbeat';
import { captureLogger } from '../helpers/log';
import { waitFor } from '../helpers/wait';

const REGISTRATION: HostRegistration = { underlayIp: '192.168.1.1', vtepMac: '02:00:00:00:00:01', rack: '', datacenter: '', wgPublicKey: '', agentVersion: '1.2.3', networks: [] };
const REGISTERED: Registration = { subnets: [], config: null as never, revision: 1 };

/** A controller that records what each heartbeat carried and answers at once (next one due in a second). */
function recordingClient(): { client: AgentClient; reports: Array<HeartbeatReport | undefined> } {
  const reports: Array<HeartbeatReport | undefined> = [];
  const client = {
    hostName: 'h1',
    async heartbeat(report?: HeartbeatReport): Promise<HeartbeatResult> {
      reports.push(report);
      return { subnets: [], nextHeartbeatSeconds: 1, revision: 1 };
    },
  } as unknown as AgentClient;
  return { client, reports };
}

const result = (o: Partial<ReconcileResult> = {}): ReconcileResult => ({
  desired: 5, added: 5, replaced: 0, deleted: 0, failed: 0, requests: 5, durationMs: 1, errors: [], skipped: [], ...o,
});

let loop: HeartbeatLoop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
});

describe('heartbeat report', () => {
  it('holds the version only until the first reconcile, then the last reconcile with its topology revision', async () => {
    const m = createAgentMetrics({ hostName: 'h1', version: '1.2.3', outboxPending: () => 0 });
    expect(await m.heartbeatReport()).toEqual({ agentVersion: '1.2.3' });
    m.reconciled('start', result({ desired: 5, failed: 2, errors: [
      { action: 'add', kind: 'route', entry: {} as never, error: new Error('x') },
      // a failed delete leaves every desired entry in place
      { action: 'delete', kind: 'fdb', entry: {} as never, error: new Error('y') },
    ], skipped: [{ host: 'h2', network: 'default', reason: 'r' }] }), 41);
    const r = await m.heartbeatReport();
    expect(r).toMatchObject({ agentVersion: '1.2.3', overlay: { desired: 5, programmed: 4, failed: 2, skipped: 1, topologyRevision: 41 } });
    expect(r.overlay!.reconciledAt).toBeGreaterThan(Date.now() - 10_000);
    // a reconcile that failed as a whole keeps the last summary (its time says how old it is)
    m.reconcileFailed('resync', 0.01);
    expect(await m.heartbeatReport()).toEqual(r);
  });

  it('goes with every heartbeat, and a report that throws sends the heartbeat without it', async () => {
    const { client, reports } = recordingClient();
    const { logger, lines } = captureLogger('info');
    let calls = 0;
    const report = async (): Promise<HeartbeatReport> => {
      if (calls++ === 0) throw new Error('metrics broke');
      return { agentVersion: '1.2.3', overlay: { desired: 3, programmed: 3, failed: 0, skipped: 0, reconciledAt: 1, topologyRevision: 2 } };
    };
    loop = runHeartbeats({ client, registration: REGISTRATION, registered: REGISTERED, report, log: logger });
    await waitFor('two heartbeats', () => reports.length >= 2, { ms: 5000 });
    expect(reports[0]).toBeUndefined();
    expect(reports[1]).toMatchObject({ agentVersion: '1.2.3', overlay: { desired: 3 } });
    expect(lines.some((l) => /cannot make the heartbeat report/.test(String(l.msg)))).toBe(true);
  });
});
