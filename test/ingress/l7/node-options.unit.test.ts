import { describe, expect, it } from 'vitest';
import { missingNodeOptions, RECOMMENDED_NODE_OPTIONS } from '../../../ingress/l7/node-options';

describe('the node options the ingress wants', () => {
  it('names every recommended option when node runs without options', () => {
    expect(RECOMMENDED_NODE_OPTIONS.length).toBeGreaterThan(0);
    expect(missingNodeOptions([])).toEqual([...RECOMMENDED_NODE_OPTIONS]);
    expect(missingNodeOptions(['--enable-source-maps', '--max-semi-space-size=32'])).toEqual(['--min-semi-space-size=16']);
  });

  it('counts an option as given in any spelling node accepts, at any value', () => {
    expect(missingNodeOptions(['--min-semi-space-size=16'])).toEqual([]);
    expect(missingNodeOptions(['--min-semi-space-size', '8'])).toEqual([]);
    expect(missingNodeOptions(['--min_semi_space_size=32'])).toEqual([]);
  });

  it('is what a node started with the options reports in process.execArgv', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [...RECOMMENDED_NODE_OPTIONS, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(missingNodeOptions(JSON.parse(r.stdout))).toEqual([]);
    // and node really takes them: the new space starts at the 16 MB floor instead of V8's 1 MB
    const newSpace = (opts: readonly string[]) => {
      const h = spawnSync(process.execPath, [...opts, '-e', "process.stdout.write(String(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size))"], { encoding: 'utf8' });
      expect(h.status, h.stderr).toBe(0);
      return Number(h.stdout);
    };
    expect(newSpace([])).toBeLessThan(16 * 2 ** 20);
    expect(newSpace(RECOMMENDED_NODE_OPTIONS)).toBeGreaterThanOrEqual(16 * 2 ** 20);
  });
});
