// A probe responder or a gateway chooser in a process of its own, started by
// tunnel-probe.test.ts inside a namespace (`ip netns exec <ns> node --import
// tsx <this> '<json>'`), so its sockets live there as an agent's would. It
// writes one JSON line per event on stdout:
//   responder: {event:'ready', port}, then {event:'counts', answered, malformed, refused} on every change;
//   chooser:   {event:'change', reason, chosen, at} when it changes a choice by itself,
//              {event:'ok', chosen, at, misses} whenever a probe is answered (`at`: when, ms since the epoch).
// It runs until killed.
import { silentLogger } from '../../controller/common/log';
import { startChooser, type PathSpec } from '../../cni-plugin/agent/tunnel/chooser';
import { startProbeResponder } from '../../cni-plugin/agent/tunnel/probe';

type Config =
  | { mode: 'responder'; port: number; allowed: string[] }
  | { mode: 'chooser'; port: number; source: string; paths: PathSpec[]; intervalMs?: number };

const config = JSON.parse(process.argv[2]!) as Config;
const say = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');

if (config.mode === 'responder') {
  const allowed = new Set(config.allowed);
  const r = await startProbeResponder({ port: config.port, allowed: (a) => allowed.has(a), log: silentLogger });
  say({ event: 'ready', port: r.port });
  let last = '';
  setInterval(() => {
    const c = JSON.stringify(r.counts());
    if (c !== last) say({ event: 'counts', ...JSON.parse(c) });
    last = c;
  }, 20);
} else {
  const chooser = startChooser({ port: config.port, intervalMs: config.intervalMs, log: silentLogger });
  const dc = config.paths[0]!.datacenter;
  chooser.onChange((reason) => say({ event: 'change', reason, chosen: chooser.choices().get(dc), at: Date.now() }));
  chooser.update(config.paths, config.source);
  say({ event: 'ready', chosen: chooser.choices().get(dc) });
  // lastOkAt is stamped when the reply arrives, so polling adds no error to `at`.
  let lastOk = 0;
  setInterval(() => {
    const h = chooser.health().find((p) => p.datacenter === dc)!;
    if (h.lastOkAt !== lastOk) say({ event: 'ok', chosen: h.chosen, at: h.lastOkAt, misses: h.consecutiveMisses });
    lastOk = h.lastOkAt;
  }, 5);
}
