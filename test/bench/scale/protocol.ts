// What the scale bench's parent and its host processes say to each other
// over IPC. Times are process.hrtime.bigint() as decimal strings: one
// monotonic clock for every process on the machine.
import type { Mode } from '../controller/protocol';

/** Names the bench's own probe hosts start with: their arrival is what fan-out measures. */
export const PROBE_PREFIX = 'probe-';

export type ToHosts =
  /** Make each host's key, client certificate and channel; nothing is sent to the controller yet. */
  | { cmd: 'setup'; target: string; mode: Mode; caDir: string; hosts: Array<{ name: string; n: number }>; heartbeatMs: number }
  /**
   * Every host: RegisterHost (retried as an agent does; at most `inFlight` at
   * a time in this process, 0: all at once), then at once WatchTopology from
   * 0, then heartbeats.
   */
  | { cmd: 'join'; timeoutMs: number; inFlight?: number }
  /**
   * Until every reading host's watch holds HOST_PUT (or a SNAPSHOT with) probe
   * `host`, registered after the change awaited: events come in revision
   * order, so holding it means holding everything before it.
   */
  | { cmd: 'sync'; host: string; timeoutMs: number }
  /** Start counting what each host's next (re)opened watch begins with. */
  | { cmd: 'mark' }
  /** Until every reading host holds HOST_PUT of `host`. */
  | { cmd: 'collect'; host: string; timeoutMs: number }
  /** Stop reading the watch stream of every `every`-th host. */
  | { cmd: 'stall'; every: number }
  /** Read again; until each stalled host holds HOST_PUT of `host`. */
  | { cmd: 'unstall'; host: string; timeoutMs: number }
  /** What happened since the last ask: stream ends and heartbeat outcomes by status code. */
  | { cmd: 'counters' }
  | { cmd: 'close' };

export type Arrival = { watcher: string; ns: string; subnets: string } | { watcher: string; missing: string };

/** What the stalled hosts went through: still on their first stream, or ended by the controller and back. */
export type StallOutcome = {
  stalled: number;
  /** caught up on the stream they stalled on */
  caughtUp: number;
  /** their stream was ended while they did not read; by status code (e.g. RESOURCE_EXHAUSTED) */
  endedBy: Record<string, number>;
  /** of those, how the watch came back: resumed from its revision, or a new SNAPSHOT */
  resumed: number;
  snapshots: number;
  /** after reading again, the time until the last stalled host held the probe (ns, monotonic) */
  lastNs: string;
};

export type Counters = { streamEnds: Record<string, number>; heartbeats: Record<string, number>; opens: number };

export type FromHosts =
  | { ok: 'setup'; certsMs: number }
  | { ok: 'joined'; registeredNs: string; snapshotsNs: string; registerRetries: number; snapshotMin: number; snapshotMax: number }
  /** openedNs: the latest open of a stream that brought the probe (the last watch back) */
  | { ok: 'synced'; lastNs: string; openedNs: string; hosts: number; resumed: number; snapshots: number; reconnects: number; notReopened: number }
  | { ok: 'marked' }
  | { ok: 'collected'; host: string; arrivals: Arrival[] }
  | { ok: 'stalled'; count: number }
  | { ok: 'unstalled'; outcome: StallOutcome }
  | { ok: 'counters'; counters: Counters }
  | { error: string };
