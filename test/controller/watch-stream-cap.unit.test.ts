// Watch streams per caller are capped: one certificate opening thousands of
// streams costs the controller memory for each. Each identity may have a
// number of streams of each kind open (per kind of caller, configurable);
// one more is ended with RESOURCE_EXHAUSTED naming the cap, and a stream
// that closes frees its slot.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { WATCH_STREAMS_PER_CALLER } from '../../controller/service/service';
import { waitFor } from '../helpers/wait';
import { type Harness, type Reader, registerHost, startHarness } from './api-harness';

let h: Harness;
afterEach(async () => {
  await h.close();
});

const snapshot = (r: Reader) => r.waitFor((m) => m.kind === 'SNAPSHOT');

/** The stream ends with RESOURCE_EXHAUSTED naming the cap; one that is served instead fails at its first message. */
async function refusedStream(r: Reader, cap: RegExp): Promise<void> {
  let end: grpc.StatusObject | undefined;
  void r.ended.then((s) => (end = s as grpc.StatusObject));
  const got = await waitFor('the stream to end or send a message', () => end ?? (r.msgs.length > 0 ? 'served' : undefined), 10_000);
  if (got === 'served') throw new Error(`the stream was served past the cap: ${JSON.stringify(r.msgs[0]).slice(0, 200)}`);
  const st = got as grpc.StatusObject;
  expect(grpc.status[st.code], st.details).toBe('RESOURCE_EXHAUSTED');
  expect(st.details).toMatch(cap);
  expect(r.msgs).toEqual([]);
}

describe('watch streams per caller', () => {
  it('refuses a host its 9th WatchTopology stream by default, and frees a slot when a stream closes', async () => {
    h = await startHarness();
    await registerHost(h, 'h1', 1);
    const cap = WATCH_STREAMS_PER_CALLER.host;
    expect(cap).toBe(8);
    const open = Array.from({ length: cap }, () => h.open('WatchTopology', { from_revision: 0 }, 'host:h1'));
    await Promise.all(open.map(snapshot));

    await refusedStream(h.open('WatchTopology', { from_revision: 0 }, 'host:h1'), /host "h1" already has 8 WatchTopology streams open \(at most 8 per host\)/);
    expect(h.logs.some((l) => l.msg === 'refused watch stream: caller is at its cap' && l.caller === 'host "h1"')).toBe(true);

    // Another host, and another kind for the same host, count on their own.
    await snapshot(h.open('WatchTopology', { from_revision: 0 }, 'host:h2'));
    await snapshot(h.open('WatchServices', { from_revision: 0 }, 'host:h1'));

    // The streams still open keep working.
    await registerHost(h, 'h3', 3);
    await Promise.all(open.map((r) => r.waitFor((m) => m.kind === 'HOST_PUT')));

    // A closed stream frees its slot.
    const streams = h.openStreams();
    open[0].cancel();
    await waitFor('the server to see the stream cancelled', () => h.openStreams() === streams - 1);
    await snapshot(h.open('WatchTopology', { from_revision: 0 }, 'host:h1'));
    await refusedStream(h.open('WatchTopology', { from_revision: 0 }, 'host:h1'), /at most 8 per host/);
  });

  it('caps ingresses and admins too, each by its own configurable limit', async () => {
    h = await startHarness({ deps: { watchStreams: { ingress: 2, admin: 3 } } });
    const ing = [1, 2].map(() => h.open('WatchServices', { from_revision: 0 }, 'ingress:edge'));
    await Promise.all(ing.map(snapshot));
    await refusedStream(h.open('WatchServices', { from_revision: 0 }, 'ingress:edge'), /ingress "edge" already has 2 WatchServices streams open \(at most 2 per ingress\)/);
    await snapshot(h.open('WatchServices', { from_revision: 0 }, 'ingress:edge2'));

    const adm = [1, 2, 3].map(() => h.open('WatchTopology', { from_revision: 0 }, 'admin'));
    await Promise.all(adm.map(snapshot));
    await refusedStream(h.open('WatchTopology', { from_revision: 0 }, 'admin'), /at most 3 per admin/);
  });

  it('does not count a stream that was refused for another reason', async () => {
    h = await startHarness({ deps: { watchStreams: { host: 1 } } });
    const bad = h.open('WatchTopology', { from_revision: -1 }, 'host:h1');
    const st = (await bad.ended) as grpc.StatusObject;
    expect(grpc.status[st.code]).toBe('INVALID_ARGUMENT');
    const denied = h.open('WatchTopology', { from_revision: 0 }, 'ingress:edge');
    expect(grpc.status[((await denied.ended) as grpc.StatusObject).code]).toBe('PERMISSION_DENIED');
    await snapshot(h.open('WatchTopology', { from_revision: 0 }, 'host:h1'));
  });
});
