// The pure half of the fail-closed table: the listing nft prints, parsed;
// the diff; and which phase sends which element change.
import { describe, expect, it } from 'vitest';
import {
  diffFailClosed, expectedChains, parseListing, phaseScript, renderFailClosed, RULE, SET_NAMES, type FailClosedView,
} from '../../cni-plugin/agent/tunnel/fail-closed';
import type { FailClosedPolicy } from '../../cni-plugin/agent/state/tunnel';

const POLICY: FailClosedPolicy = {
  role: 'host', pools: ['10.244.0.0/16', 'fd00:244::/48'], local: ['10.244.1.0/24', '10.244.2.0/24'], remoteUnderlays: ['192.168.2.1', '2001:db8::2'],
  vxlanPort: 4789, overlayDevices: ['weft.vx1'],
};

const LISTING = `table inet weft_xdc {
	set pools4 {
		type ipv4_addr
		flags interval
		elements = { 10.244.0.0/16 }
	}

	set pools6 {
		type ipv6_addr
		flags interval
		elements = { fd00:244::/48 }
	}

	set local4 {
		type ipv4_addr
		flags interval
		elements = { 10.244.1.0/24,
			     10.244.2.0/24 }
	}

	set local6 {
		type ipv6_addr
		flags interval
	}

	set underlay4 {
		type ipv4_addr
		flags interval
		elements = { 192.168.2.1 }
	}

	set underlay6 {
		type ipv6_addr
		flags interval
		elements = { 2001:db8::2 }
	}

	set mesh4 {
		type ipv4_addr
		flags interval
	}

	set mesh6 {
		type ipv6_addr
		flags interval
	}

	set tunnel_ifs {
		type ifname
		elements = { "weft.vx1" }
	}

	set vxlan_ports {
		type inet_service
		elements = { 4789 }
	}

${['output', 'forward'].map((c) => `	chain ${c} {
		type filter hook ${c} priority filter; policy accept;
		ip daddr @pools4 ip daddr != @local4 oifname != @tunnel_ifs counter packets 3 bytes 252 drop comment "${RULE.remote4}"
		ip6 daddr @pools6 ip6 daddr != @local6 oifname != @tunnel_ifs counter packets 0 bytes 0 drop comment "${RULE.remote6}"
		ip daddr @underlay4 udp dport @vxlan_ports counter packets 1 bytes 50 drop comment "${RULE.vxlan4}"
		ip6 daddr @underlay6 udp dport @vxlan_ports counter packets 0 bytes 0 drop comment "${RULE.vxlan6}"
		ip daddr @mesh4 udp dport @vxlan_ports oifname != "weft.wg0" counter packets 0 bytes 0 drop comment "${RULE.mesh4}"
		ip6 daddr @mesh6 udp dport @vxlan_ports oifname != "weft.wg0" counter packets 0 bytes 0 drop comment "${RULE.mesh6}"
		oifname "weft.xdc" tcp flags syn tcp option maxseg size set rt mtu comment "${RULE.mss}"${c === 'forward' ? `
		oifname "weft.xdc" counter packets 40 bytes 4000 comment "${RULE.intoTunnel}"
		iifname "weft.xdc" counter packets 2 bytes 200 comment "${RULE.fromTunnel}"` : ''}
	}`).join('\n\n')}
}
`;

describe('fail-closed table (pure)', () => {
  it('parses what nft lists: sets, rules and counters', () => {
    const v = parseListing(LISTING);
    expect(v.exists).toBe(true);
    expect([...v.elements.keys()].sort()).toEqual([...SET_NAMES].sort());
    expect(v.elements.get('local4')).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    expect(v.elements.get('underlay4')).toEqual(['192.168.2.1/32']);
    expect(v.elements.get('underlay6')).toEqual(['2001:db8::2/128']);
    expect(v.elements.get('local6')).toEqual([]);
    expect(v.elements.get('tunnel_ifs')).toEqual(['weft.vx1']);
    expect(v.chains).toEqual(expectedChains());
    expect(v.counters.get(RULE.remote4)).toBe(6);
    // forwarded traffic is counted in the forward chain only: a gateway's own probes leave by the output hook
    expect(v.counters.get(RULE.intoTunnel)).toBe(40);
    expect(v.counters.get(RULE.fromTunnel)).toBe(2);
    expect(v.counters.get(RULE.vxlan4)).toBe(2);
  });

  it('a listing that matches the policy is no change at all', () => {
    const plan = diffFailClosed(renderFailClosed(POLICY), parseListing(LISTING));
    expect(plan).toEqual({ rebuild: false, sets: new Map() });
    for (const phase of ['add', 'remove', 'all'] as const) expect(phaseScript(plan, phase, renderFailClosed(POLICY), true)).toBe('');
  });

  it('adds go in the add phase, removes in the remove phase, an overlapped element with the add that covers it', () => {
    const next: FailClosedPolicy = { ...POLICY, local: ['10.244.0.0/20', '10.244.32.0/24'], remoteUnderlays: ['2001:db8::2'], overlayDevices: ['weft.vx1', 'weft.vx2'] };
    const desired = renderFailClosed(next);
    const plan = diffFailClosed(desired, parseListing(LISTING));
    expect(plan.rebuild).toBe(false);
    const add = phaseScript(plan, 'add', desired, true);
    const remove = phaseScript(plan, 'remove', desired, true);
    expect(add).toContain('delete element inet weft_xdc local4 { 10.244.1.0/24, 10.244.2.0/24 }');
    expect(add).toContain('add element inet weft_xdc local4 { 10.244.0.0/20, 10.244.32.0/24 }');
    expect(add).toContain('add element inet weft_xdc tunnel_ifs { "weft.vx2" }');
    expect(add).not.toContain('underlay4');
    expect(remove).toBe('delete element inet weft_xdc underlay4 { 192.168.2.1/32 }\n');
    // the delete of what an add overlaps comes first in its transaction
    expect(add.indexOf('delete element inet weft_xdc local4')).toBeLessThan(add.indexOf('add element inet weft_xdc local4'));
  });

  it('a missing table or a rule that is not ours: rebuilt, elements and all, in the add phase', () => {
    const none: FailClosedView = { exists: false, chains: new Map(), elements: new Map(), counters: new Map() };
    const desired = renderFailClosed(POLICY);
    const plan = diffFailClosed(desired, none);
    expect(plan.rebuild).toBe(true);
    const s = phaseScript(plan, 'add', desired, false);
    expect(s).not.toContain('delete table');
    expect(s).toContain('add chain inet weft_xdc output { type filter hook output priority 0; policy accept; }');
    expect(s).toContain('add element inet weft_xdc pools4 { 10.244.0.0/16 }');
    expect(phaseScript(plan, 'remove', desired, false)).toBe('');
    const edited = parseListing(LISTING.replace(`comment "${RULE.vxlan6}"`, ''));
    const p2 = diffFailClosed(desired, edited);
    expect(p2.rebuild).toBe(true);
    expect(phaseScript(p2, 'add', desired, true).startsWith('delete table inet weft_xdc\n')).toBe(true);
  });
});
