// weft's iptables hooks: each built-in chain weft hooks must jump into its
// WEFT-* chain as rule 1, before any distribution or firewall REJECT, and
// the chain it jumps to must exist. Read from iptables-save, the same
// listing the agent's reconcile starts from; ip6tables too where the host
// holds an IPv6 network, as the agent does.
import { ruleTarget, weftRules, type Family, type Hook, type SavedState } from '../../../dataplane/iptables';
import { fail, pass, warn, type Finding } from './finding';

/**
 * The hooks weft installs when the host holds any weft network. They do not
 * depend on which networks (those change only the WEFT-* chains' rules), so
 * they are read off the rule set for a stand-in network.
 */
export function weftHooks(family: Family = 4): Hook[] {
  const cidr = family === 4 ? '10.0.0.0/8' : 'fd00::/8';
  return weftRules({ clusterCidrs: [cidr], networks: [{ name: 'n', cidr }] }, { family }).hooks;
}

/** `state`: iptables-save (ip6tables-save for family 6) parsed, or why it could not be read. `expected`: the hooks, none when the host holds no weft network. */
export function judgeIptables(state: SavedState | { error: string }, expected: Hook[], family: Family = 4): Finding[] {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const fixFor = (h: Hook) =>
    `restart the agent (it also puts the jump back at its next resync), or now: ${tool} -t ${h.table} -D ${h.from} -j ${h.to}; ${tool} -t ${h.table} -I ${h.from} 1 -j ${h.to}`;
  if ('error' in state) {
    return [fail(tool, 'save', `cannot read the rules: ${state.error}`, 'install iptables (apt-get install iptables) and run weft doctor as root')];
  }
  if (expected.length === 0) return [pass(tool, 'hooks', 'this host holds no weft network yet, so weft hooks no chain')];
  const out: Finding[] = [];
  for (const h of expected) {
    const check = `${h.table} ${h.from}`;
    const table = state[h.table];
    const rules = (table?.rules ?? []).filter((r) => r.chain === h.from);
    const at = rules.findIndex((r) => ruleTarget(r.spec) === h.to);
    if (at < 0) {
      out.push(fail(tool, check, `no jump from ${h.from} to ${h.to} in the ${h.table} table: weft's ${h.table === 'nat' ? 'masquerading' : 'forwarding policy'} is bypassed`, fixFor(h)));
      continue;
    }
    if (!table!.chains.includes(h.to)) {
      out.push(fail(tool, check, `${h.from} jumps to ${h.to}, but the ${h.table} table has no such chain`, 'restart the agent: it rewrites its chains'));
      continue;
    }
    if (at > 0) {
      const above = rules.slice(0, at).map((r) => `"${r.spec}"`);
      out.push(fail(tool, check, `weft's jump to ${h.to} is rule ${at + 1} of ${h.table} ${h.from}, below ${above.join(', ')}: ` +
        'a REJECT or DROP above it decides container traffic before weft does', fixFor(h)));
      continue;
    }
    const extra = rules.filter((r) => ruleTarget(r.spec) === h.to).length;
    if (extra > 1) {
      out.push(warn(tool, check, `${h.from} jumps to ${h.to} ${extra} times (rule 1 first)`, `${tool} -t ${h.table} -D ${h.from} -j ${h.to} until one is left at rule 1, or restart the agent`));
      continue;
    }
    out.push(pass(tool, check, `rule 1 of ${h.table} ${h.from} jumps to ${h.to}`));
  }
  return out;
}
