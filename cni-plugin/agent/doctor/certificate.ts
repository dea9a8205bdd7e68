// The host's client certificate, read from the agent's state dir. The agent
// renews it at half its lifetime (renewal.ts); a certificate still unrenewed
// past that point means renewals are failing, and one that expired locks the
// host out until the agent renews it with its old key (within the
// controller's grace window) or joins again with a token.
import { fail, pass, warn, type Finding } from './finding';

export type CertFacts = { path: string; hostName: string; validFrom: number; validTo: number; renewAt: number };

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function span(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function judgeCertificate(c: CertFacts, now: number): Finding[] {
  const who = `certificate of host ${c.hostName} (${c.path})`;
  if (now >= c.validTo) {
    return [fail('certificate', 'expiry', `${who} expired ${span(now - c.validTo)} ago, at ${iso(c.validTo)}: the controller refuses this host`,
      "start the agent: it renews with its old key within the controller's grace window; past that, join again with a token from weft token create")];
  }
  if (now < c.validFrom) {
    return [fail('certificate', 'expiry', `${who} is not valid before ${iso(c.validFrom)}, ${span(c.validFrom - now)} from now by this host's clock`,
      "this host's clock is behind: fix time synchronisation (timedatectl, chrony)")];
  }
  if (now >= c.renewAt) {
    return [warn('certificate', 'expiry', `${who} expires in ${span(c.validTo - now)} (${iso(c.validTo)}); it was due for renewal ${span(now - c.renewAt)} ago and is not renewed`,
      'the agent renews at half the lifetime: look for "renewal" errors in its log, and check the controller checks above')];
  }
  return [pass('certificate', 'expiry', `${who} valid until ${iso(c.validTo)} (in ${span(c.validTo - now)}); renewal due at ${iso(c.renewAt)}`)];
}
