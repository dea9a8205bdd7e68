// Applying weft's rule set to the kernel, each test in its own namespace;
// what the kernel holds is read back with iptables-save run in that namespace.
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../dataplane/netlink/errors';
import {
  type Family,
  type RuleSet,
  IptablesRestoreError,
  applyRuleSet,
  parseSave,
  removeWeftChains,
  weftRules,
} from '../../dataplane/iptables';
import { nsExec, useTestNetns } from '../helpers/netns';

const INPUT = {
  clusterCidrs: ['10.244.0.0/16'],
  networks: [
    { name: 'a', cidr: '10.244.1.0/24', bridge: 'weft0' },
    { name: 'b', cidr: '10.244.2.0/24' },
  ],
};

/** The namespace's tables as iptables-save prints them, minus the timestamp comments. */
function save(ns: string, family: Family = 4): string {
  return nsExec(ns, family === 6 ? 'ip6tables-save' : 'iptables-save', [])
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

function rulesOf(ns: string, table: string, chain: string, family: Family = 4): string[] {
  return (parseSave(save(ns, family))[table]?.rules ?? []).filter((r) => r.chain === chain).map((r) => r.spec);
}

function ipt(ns: string, args: string[]): void {
  nsExec(ns, 'iptables', ['-w', '5', ...args]);
}

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

afterAll(() => {
  // The root namespace must never see weft's test chains.
  expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toContain('WEFT');
});

describe('applyRuleSet in a namespace', () => {
  const nss = useTestNetns('i', 1);

  it('installs the chains and hooks each at position 1 of its built-in chain', () => {
    const [ns] = nss();
    const r = applyRuleSet(weftRules(INPUT), { netns: ns });
    expect(r.changed).toBe(true);
    const st = parseSave(save(ns));
    expect(st.filter.chains).toEqual(expect.arrayContaining(['WEFT-FORWARD', 'WEFT-NETWORKS', 'WEFT-ISOLATION']));
    expect(st.nat.chains).toEqual(expect.arrayContaining(['WEFT-POSTROUTING', 'WEFT-MASQ']));
    expect(rulesOf(ns, 'filter', 'FORWARD')).toEqual(['-j WEFT-FORWARD']);
    expect(rulesOf(ns, 'nat', 'POSTROUTING')).toEqual(['-j WEFT-POSTROUTING']);
    expect(rulesOf(ns, 'nat', 'WEFT-MASQ')).toEqual(['-d 10.244.0.0/16 -j RETURN', '-j MASQUERADE']);
    expect(rulesOf(ns, 'filter', 'WEFT-ISOLATION')).toEqual([
      '-s 10.244.1.0/24 -d 10.244.2.0/24 -j DROP',
      '-s 10.244.2.0/24 -d 10.244.1.0/24 -j DROP',
    ]);
  });

  it('re-applying changes nothing', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    const first = save(ns);
    const again = applyRuleSet(weftRules(INPUT), { netns: ns });
    expect(again).toEqual({ changed: false, document: '', changes: [] });
    expect(save(ns)).toBe(first);
  });

  it('puts its jump back above a REJECT someone inserted at the top, keeping their rule', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    ipt(ns, ['-I', 'FORWARD', '1', '-j', 'REJECT']);
    ipt(ns, ['-t', 'nat', '-I', 'POSTROUTING', '1', '-o', 'lo', '-j', 'ACCEPT']);
    expect(rulesOf(ns, 'filter', 'FORWARD')[0]).toMatch(/^-j REJECT/);
    expect(applyRuleSet(weftRules(INPUT), { netns: ns }).changed).toBe(true);
    expect(rulesOf(ns, 'filter', 'FORWARD')).toEqual(['-j WEFT-FORWARD', '-j REJECT --reject-with icmp-port-unreachable']);
    expect(rulesOf(ns, 'nat', 'POSTROUTING')).toEqual(['-j WEFT-POSTROUTING', '-o lo -j ACCEPT']);
  });

  it('repairs duplicate jumps, including ones with extra matches, leaving exactly one', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    ipt(ns, ['-A', 'FORWARD', '-j', 'WEFT-FORWARD']);
    ipt(ns, ['-A', 'FORWARD', '-j', 'ACCEPT']);
    ipt(ns, ['-A', 'FORWARD', '-s', '10.9.9.9', '-m', 'comment', '--comment', 'old weft', '-j', 'WEFT-FORWARD']);
    ipt(ns, ['-I', 'FORWARD', '1', '-j', 'WEFT-FORWARD']);
    expect(rulesOf(ns, 'filter', 'FORWARD').filter((r) => r.includes('WEFT-FORWARD'))).toHaveLength(4);
    applyRuleSet(weftRules(INPUT), { netns: ns });
    expect(rulesOf(ns, 'filter', 'FORWARD')).toEqual(['-j WEFT-FORWARD', '-j ACCEPT']);
  });

  it('inserts a missing jump without touching the chains', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    ipt(ns, ['-D', 'FORWARD', '-j', 'WEFT-FORWARD']);
    const r = applyRuleSet(weftRules(INPUT), { netns: ns });
    expect(r.document).toBe('*filter\n-I FORWARD 1 -j WEFT-FORWARD\nCOMMIT\n');
    expect(rulesOf(ns, 'filter', 'FORWARD')).toEqual(['-j WEFT-FORWARD']);
  });

  it('a changed input replaces the rules; chains no longer needed go away', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    const next = { clusterCidrs: ['10.244.0.0/16', '10.250.0.0/16'], networks: [{ name: 'c', cidr: '10.250.3.0/24' }] };
    applyRuleSet(weftRules(next), { netns: ns });
    const st = parseSave(save(ns));
    expect(st.filter.chains).not.toContain('WEFT-ISOLATION');
    expect(rulesOf(ns, 'filter', 'WEFT-FORWARD')).toEqual(['-s 10.250.3.0/24 -j WEFT-NETWORKS', '-d 10.250.3.0/24 -j WEFT-NETWORKS']);
    expect(rulesOf(ns, 'nat', 'WEFT-MASQ')).toEqual(['-d 10.244.0.0/16 -j RETURN', '-d 10.250.0.0/16 -j RETURN', '-j MASQUERADE']);
    expect(rulesOf(ns, 'nat', 'WEFT-POSTROUTING')).toEqual(['-s 10.250.3.0/24 -j WEFT-MASQ']);
    expect(save(ns)).not.toContain('10.244.1.0');
  });

  it('removeWeftChains leaves no WEFT chain or jump, keeps others\' rules, and is idempotent', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    ipt(ns, ['-A', 'FORWARD', '-j', 'REJECT']);
    ipt(ns, ['-N', 'MINE']);
    ipt(ns, ['-A', 'MINE', '-j', 'WEFT-NETWORKS']);
    ipt(ns, ['-t', 'mangle', '-N', 'WEFT-OLD']);
    ipt(ns, ['-t', 'mangle', '-A', 'PREROUTING', '-j', 'WEFT-OLD']);
    expect(removeWeftChains({ netns: ns }).changed).toBe(true);
    const text = save(ns);
    expect(text).not.toContain('WEFT');
    expect(rulesOf(ns, 'filter', 'FORWARD')).toEqual(['-j REJECT --reject-with icmp-port-unreachable']);
    expect(parseSave(text).filter.chains).toContain('MINE');
    expect(removeWeftChains({ netns: ns })).toEqual({ changed: false, document: '', changes: [] });
    expect(save(ns)).toBe(text);
  });

  it('removeWeftChains on a namespace without any table is a no-op', () => {
    const [ns] = nss();
    expect(removeWeftChains({ netns: ns })).toEqual({ changed: false, document: '', changes: [] });
  });

  it('a rule iptables cannot parse is a typed error with its line, and the previous state stays', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    const before = save(ns);
    const bad: RuleSet = weftRules(INPUT);
    bad.chains[0] = { ...bad.chains[0], rules: [...bad.chains[0].rules, '-m nosuchmatch -j ACCEPT'] };
    const err = catchErr(() => applyRuleSet(bad, { netns: ns })) as IptablesRestoreError;
    expect(err).toBeInstanceOf(IptablesRestoreError);
    expect(err.tool).toBe('iptables-restore');
    expect(err.lineText).toBe('-A WEFT-FORWARD -m nosuchmatch -j ACCEPT');
    expect(err.table).toBe('filter');
    expect(err.stderr).toMatch(/nosuchmatch/);
    expect(err.message).toMatch(/at line \d+/);
    expect(save(ns)).toBe(before);
  });

  it('a failure in the nat table puts back the filter table that was already committed', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    ipt(ns, ['-I', 'FORWARD', '1', '-j', 'REJECT']);
    const before = save(ns);
    const next = weftRules({ clusterCidrs: ['10.244.0.0/16'], networks: [{ name: 'z', cidr: '10.244.9.0/24' }] });
    // REJECT is not allowed in nat: this passes parsing and fails only when the kernel sees the nat table
    next.chains.find((c) => c.name === 'WEFT-MASQ')!.rules.unshift('-j REJECT');
    const err = catchErr(() => applyRuleSet(next, { netns: ns })) as IptablesRestoreError;
    expect(err).toBeInstanceOf(IptablesRestoreError);
    expect(err.table).toBe('nat');
    expect(err.lineText).toBe('-A WEFT-MASQ -j REJECT');
    // filter was committed, then rolled back: the old rules, with the jump where it was
    expect(save(ns)).toBe(before);
  });

  it('bad input is rejected before anything runs', () => {
    const [ns] = nss();
    applyRuleSet(weftRules(INPUT), { netns: ns });
    const before = save(ns);
    expect(() => applyRuleSet(weftRules({ ...INPUT, clusterCidrs: ['10.244.0.0/99'] }), { netns: ns })).toThrow(/clusterCidrs\[0\]/);
    const smuggle: RuleSet = { chains: [{ table: 'filter', name: 'WEFT-FORWARD', rules: ['-j ACCEPT\n-F INPUT'] }], hooks: [] };
    expect(() => applyRuleSet(smuggle, { netns: ns })).toThrow(InvalidArgumentError);
    expect(save(ns)).toBe(before);
  });

  it('IPv6 goes through ip6tables with the same API, leaving IPv4 alone', () => {
    const [ns] = nss();
    const input = { clusterCidrs: ['fd00:244::/48'], networks: [{ name: 'a', cidr: 'fd00:244:0:1::/64' }, { name: 'b', cidr: 'fd00:244:0:2::/64' }] };
    expect(applyRuleSet(weftRules(input, { family: 6 }), { netns: ns, family: 6 }).changed).toBe(true);
    expect(rulesOf(ns, 'filter', 'FORWARD', 6)).toEqual(['-j WEFT-FORWARD']);
    expect(rulesOf(ns, 'nat', 'WEFT-MASQ', 6)).toEqual(['-d fd00:244::/48 -j RETURN', '-j MASQUERADE']);
    expect(rulesOf(ns, 'filter', 'WEFT-ISOLATION', 6)).toContain('-s fd00:244:0:1::/64 -d fd00:244:0:2::/64 -j DROP');
    expect(applyRuleSet(weftRules(input, { family: 6 }), { netns: ns, family: 6 }).changed).toBe(false);
    expect(save(ns, 4)).not.toContain('WEFT');
    removeWeftChains({ netns: ns, family: 6 });
    expect(save(ns, 6)).not.toContain('WEFT');
  });
});
