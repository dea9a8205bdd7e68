// Clock skew against the controller, from the HTTP/2 `date` header of the
// controller's answer to GetStatus (Node's HTTP/2 server stamps every
// response; a TLS 1.3 handshake carries no time). The header has one-second
// resolution and the answer took a round trip, so the skew is known within
// ±(0.5 s + half the round trip); a verdict counts only what lies outside
// that band.
//
// What skew breaks: the controller judges heartbeats and leases by its own
// clock (no harm), but certificates are backdated only 5 minutes and
// possession proofs accepted within 5 minutes (PROOF_WINDOW_MS), so beyond
// that a renewed certificate is not yet valid here or a renewal of an
// expired one is refused. A few seconds already say time sync is off.
import { PROOF_WINDOW_MS } from '../../../controller/api/client/possession';
import { fail, pass, warn, type Finding } from './finding';

export const SKEW_WARN_MS = 2000;
export const SKEW_FAIL_MS = PROOF_WINDOW_MS;

/** The controller's `date` header, and this host's clock when the call was sent and when the header arrived. */
export type ClockSample = { date: string; sentAt: number; receivedAt: number };

/** Skew = controller clock − this host's clock: the estimate and its uncertainty (ms); undefined for an unreadable header. */
export function skewOf(s: ClockSample): { skewMs: number; uncertaintyMs: number } | undefined {
  const d = Date.parse(s.date);
  if (!Number.isFinite(d)) return undefined;
  // the controller's clock read somewhere in [d, d + 1000) while ours ran from sentAt to receivedAt
  const theirs = d + 500;
  const ours = (s.sentAt + s.receivedAt) / 2;
  return { skewMs: Math.round(theirs - ours), uncertaintyMs: Math.round(500 + (s.receivedAt - s.sentAt) / 2) };
}

export function judgeClock(sample: ClockSample | undefined, server: string): Finding[] {
  if (!sample) return [warn('clock', 'skew', `cannot measure clock skew: no answer from the controller at ${server}`, 'see the controller checks; skew is measured from its answer')];
  const s = skewOf(sample);
  if (!s) return [warn('clock', 'skew', `the controller's answer carried no readable date header (${JSON.stringify(sample.date)})`, 'compare the clocks by hand: date -u here and on the controller')];
  const beyond = Math.max(0, Math.abs(s.skewMs) - s.uncertaintyMs);
  const dir = s.skewMs > 0 ? 'behind' : 'ahead of';
  const said = `this host's clock is ${(Math.abs(s.skewMs) / 1000).toFixed(1)}s ${dir} the controller's (±${(s.uncertaintyMs / 1000).toFixed(1)}s, from the date header of its GetStatus answer)`;
  const fix = 'turn on time synchronisation on this host and the controller (timedatectl set-ntp true, or chrony)';
  if (beyond > SKEW_FAIL_MS) return [fail('clock', 'skew', `${said}: more than the ${SKEW_FAIL_MS / 60_000} minutes certificates and key proofs allow`, fix)];
  if (beyond > SKEW_WARN_MS) return [warn('clock', 'skew', said, fix)];
  return [pass('clock', 'skew', said)];
}
