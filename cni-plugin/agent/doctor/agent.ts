// The agent process, seen from outside: /healthz (alive, its event loop
// turns), /readyz (topology received, networks held, CNI socket open, and
// the controller connection by name) and /metrics, which the overlay check
// reads for what the agent's last reconcile wanted and managed.
import type { HostPort } from '../../../controller/common/config-sources';
import { fail, pass, type Finding } from './finding';

export type HttpAnswer = { status: number; body: string } | { error: string };

export type AgentFacts = { base: string; healthz: HttpAnswer; readyz: HttpAnswer };

/** The URL base to reach an agent that listens on `listen`: a wildcard listen address is reached over loopback. */
export function agentBase(listen: HostPort): string {
  const host = listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

export async function httpGet(url: string, timeoutMs = 3000): Promise<HttpAnswer> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: r.status, body: await r.text() };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    return { error: err.cause?.code ?? err.cause?.message ?? err.message };
  }
}

const START_FIX = 'start the agent (systemctl start weft-agent, or weft agent with its flags); if it runs, give doctor its --metrics-listen';

export function judgeAgent(f: AgentFacts): Finding[] {
  const out: Finding[] = [];
  if ('error' in f.healthz) {
    out.push(fail('agent', 'healthz', `no agent answers at ${f.base}/healthz (${f.healthz.error}): containers cannot be attached and the overlay is not kept`, START_FIX));
    return out;
  }
  if (f.healthz.status !== 200) {
    out.push(fail('agent', 'healthz', `${f.base}/healthz answered ${f.healthz.status}: ${f.healthz.body.trim().slice(0, 200)}`, START_FIX));
    return out;
  }
  out.push(pass('agent', 'healthz', `the agent at ${f.base} is alive`));
  if ('error' in f.readyz) {
    out.push(fail('agent', 'readyz', `${f.base}/readyz did not answer (${f.readyz.error})`, 'look at the agent log; restart it if it hangs'));
    return out;
  }
  let parsed: { ready?: boolean; checks?: Record<string, string> } = {};
  try {
    parsed = JSON.parse(f.readyz.body) as typeof parsed;
  } catch {
    /* shown raw below */
  }
  const checks = parsed.checks ? Object.entries(parsed.checks).map(([k, v]) => `${k}: ${v}`).join('; ') : f.readyz.body.trim().slice(0, 200);
  if (f.readyz.status === 200 && parsed.ready === true) out.push(pass('agent', 'readyz', `ready (${checks})`));
  else {
    out.push(fail('agent', 'readyz', `not ready (${checks})`,
      'an agent waiting for the controller or its first topology becomes ready by itself: see the controller checks above and the agent log'));
  }
  return out;
}

/** A sample's value from Prometheus text: `name` with exactly `labels` ("" for none); undefined when absent. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const prefix = `${name}${labels ? `{${labels}}` : ''} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  if (line === undefined) return undefined;
  const v = Number(line.slice(prefix.length).trim().split(' ')[0]);
  return Number.isFinite(v) ? v : undefined;
}

/** Sum of every sample of `name` whatever its labels (a counter by trigger, say). */
export function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const l of text.split('\n')) {
    if (!(l.startsWith(`${name} `) || l.startsWith(`${name}{`))) continue;
    const v = Number(l.slice(l.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}
