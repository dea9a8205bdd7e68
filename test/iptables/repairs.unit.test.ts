// planRestore's account of what a restore changes: one line per change, each
// naming the table, the chain and why, and nothing at all when the tables
// already hold weft's rule set.
import { describe, expect, it } from 'vitest';
import { parseSave, planRestore, renderRestore, type RuleSet } from '../../dataplane/iptables';

const RS: RuleSet = {
  chains: [
    { table: 'filter', name: 'WEFT-FORWARD', rules: ['-s 10.1.0.0/16 -j ACCEPT', '-d 10.1.0.0/16 -j ACCEPT'] },
    { table: 'nat', name: 'WEFT-POSTROUTING', rules: ['-j MASQUERADE'] },
  ],
  hooks: [
    { table: 'filter', from: 'FORWARD', to: 'WEFT-FORWARD' },
    { table: 'nat', from: 'POSTROUTING', to: 'WEFT-POSTROUTING' },
  ],
};

const save = (filter: string[], nat: string[] = ['-A POSTROUTING -j WEFT-POSTROUTING', '-A WEFT-POSTROUTING -j MASQUERADE'], filterChains = ['WEFT-FORWARD', 'WT-OTHER']) =>
  parseSave([
    '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...filterChains.map((c) => `:${c} - [0:0]`), ...filter, 'COMMIT',
    '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':WEFT-POSTROUTING - [0:0]', ...nat, 'COMMIT', '',
  ].join('\n'));

const RIGHT = ['-A FORWARD -j WEFT-FORWARD', '-A FORWARD -j WT-OTHER', '-A WEFT-FORWARD -s 10.1.0.0/16 -j ACCEPT', '-A WEFT-FORWARD -d 10.1.0.0/16 -j ACCEPT'];

describe('planRestore: what a repair changes', () => {
  it('says nothing and renders nothing when the tables are right', () => {
    expect(planRestore(save(RIGHT), RS)).toEqual({ document: '', changes: [] });
  });

  it('names a flushed chain and a missing jump', () => {
    const p = planRestore(save([]), RS);
    expect(p.changes).toEqual([
      'filter WEFT-FORWARD: was empty (flushed), 2 rule(s) put back',
      'filter FORWARD: jump to WEFT-FORWARD missing, inserted as rule 1',
    ]);
    expect(p.document).toBe(renderRestore(save([]), RS));
  });

  it('names a reordered chain', () => {
    const p = planRestore(save([RIGHT[0], RIGHT[1], RIGHT[3], RIGHT[2]]), RS);
    expect(p.changes).toEqual(['filter WEFT-FORWARD: rules were out of order, 2 rule(s) rewritten in order']);
  });

  it('names the rule another tool put above weft\'s jump, and moves the jump back to rule 1', () => {
    const p = planRestore(save([RIGHT[1], RIGHT[0], RIGHT[2], RIGHT[3]]), RS);
    expect(p.changes).toEqual(['filter FORWARD: jump to WEFT-FORWARD was rule 2, below "-j WT-OTHER"; moved back to rule 1 of FORWARD']);
    expect(p.document).toContain('-D FORWARD -j WEFT-FORWARD\n-I FORWARD 1 -j WEFT-FORWARD');
  });

  it('names a missing chain, foreign rules in a weft chain and a missing table part', () => {
    const p = planRestore(save(['-A FORWARD -j WEFT-FORWARD', '-A WEFT-FORWARD -j DROP'], []), RS);
    expect(p.changes).toEqual([
      'filter WEFT-FORWARD: 2 rule(s) missing, 1 not weft\'s, rewritten with 2 rule(s)',
      'nat WEFT-POSTROUTING: was empty (flushed), 1 rule(s) put back',
      'nat POSTROUTING: jump to WEFT-POSTROUTING missing, inserted as rule 1',
    ]);
    const gone = planRestore(save(RIGHT.slice(0, 2), undefined, ['WT-OTHER']), RS);
    expect(gone.changes[0]).toBe('filter WEFT-FORWARD: missing, created');
  });
});
