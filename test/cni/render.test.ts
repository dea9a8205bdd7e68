// A result weft prints, checked against the reference plugins: it must be a
// prevResult that portmap (the usual next plugin in a chain) decodes and
// passes on unchanged. Needs containernetworking-plugins; rendering itself is
// render.unit.test.ts.
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseResult } from '../../cni-plugin/cni/parse';
import { renderResult, resultJson } from '../../cni-plugin/cni/render';
import { requireSystem } from '../helpers/system';
import { result } from './result-fixture';

const PORTMAP = '/usr/lib/cni/portmap';

beforeAll(() => requireSystem([{ pkg: 'containernetworking-plugins', file: PORTMAP }]));


/** Runs the reference portmap plugin as the next plugin in a chain, with weft's output as its prevResult. */
function portmapAdd(version: string, prevResult: unknown): { status: number | null; out: Record<string, unknown> } {
  const r = spawnSync(PORTMAP, [], {
    env: {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'ctr1',
      CNI_NETNS: '/var/run/netns/cni-1',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    },
    // No port mappings: portmap decodes prevResult and prints it back in the config's version.
    input: JSON.stringify({
      cniVersion: version,
      name: 'weftnet',
      type: 'portmap',
      capabilities: { portMappings: true },
      prevResult,
    }),
    encoding: 'utf8',
  });
  return { status: r.status, out: JSON.parse(r.stdout) as Record<string, unknown> };
}

describe('chained with the reference portmap plugin', () => {
  // portmap 1.1.1 speaks up to 1.0.0.
  for (const version of ['0.3.0', '0.3.1', '0.4.0', '1.0.0']) {
    it(`${version}: portmap passes weft's result on unchanged`, () => {
      const ours = JSON.parse(renderResult(result, version)) as Record<string, unknown>;
      const { status, out } = portmapAdd(version, ours);
      expect(status, JSON.stringify(out)).toBe(0);
      // Go fills absent DNS with {}; nothing else may differ.
      expect(out).toEqual({ dns: {}, ...ours });
      // And what portmap prints parses back to what weft meant.
      expect(parseResult(out, 'prevResult', version)).toEqual(parseResult(ours, 'prevResult', version));
    });
  }

  it("a 0.4.0 result without the address family would reach portmap's output without it", () => {
    // Why the version field matters: portmap does not derive it, it echoes what it got.
    const ours = resultJson(result, '0.4.0') as { ips: Array<Record<string, unknown>> };
    const stripped = { ...ours, ips: ours.ips.map(({ version: _v, ...ip }) => ip) };
    const { out } = portmapAdd('0.4.0', stripped);
    expect((out.ips as Array<Record<string, unknown>>)[0].version).toBe('');
  });
});
