// `weft doctor`: run on a host, as root, it checks what weft needs and what
// weft made there, and prints one PASS, WARN or FAIL line per finding with
// the fix (--json: the same as one document). Exit 1 when anything failed,
// 2 on a bad flag. It reads the agent's own settings (the agent's flags,
// WEFT_* variables and --config file, read by the agent's loader), so the
// line that starts the agent, with `agent` replaced by `doctor`, checks that
// agent. It changes nothing, and works with the agent or the controller
// down: that is then what it reports.
//
// Each area's verdicts are pure functions of facts (one module per area);
// this module gathers the facts from the kernel, the agent's state dir, the
// agent's HTTP endpoints and the controller.
import { loadCommandConfig } from '../../../controller/common/command';
import { AGENT_DEFAULTS, loadAgentConfig } from '../config';

const HELP = `usage: weft doctor [--json] [the agent's flags]

Checks this host as root: kernel features, MTU of each path, VXLAN checksum
offload, weft's iptables jumps, overlay entries programmed vs desired, stray
links, controller reachability, certificate expiry, clock skew, and the agent's
/healthz and /readyz. One line per finding: PASS, WARN or FAIL, with the fix.
Exit status: 0 when nothing failed, 1 when something did, 2 on a bad flag.

  --json                      one JSON document instead of lines
  --metrics host:port         where the agent serves /metrics /healthz /readyz (the agent's --metrics-listen; default ${AGENT_DEFAULTS.metricsListen})
  --server host:port          the controller, as the agent has it (required)
  --state-dir DIR             the agent's state dir: credentials and agent DB (default ${AGENT_DEFAULTS.stateDir})
  --config FILE               the agent's JSON config file
  --underlay-ip, --mtu, --vxlan-tx-checksum, ...
                              every other agent flag, read as the agent reads it (weft agent --help)
Every flag also reads from WEFT_<NAME> as the agent's do.
`;

/**
 * The doctor's own flags and the form of each value ('bool': none), shaped
 * like the other weft subcommands' tables; every other flag is the agent's.
 * The flag reference (test/docs) is rendered from this table, and its test
 * fails when splitDoctorArgs takes a flag the table does not list.
 */
export const DOCTOR_FLAGS: Readonly<Record<string, string>> = {
  '--json': 'bool',
  '--metrics': 'host:port (port 1-65535)',
};

type DoctorArgs = { json: boolean; agentArgv: string[] };

/** Takes out the doctor's own flags; --metrics is the agent's --metrics-listen under the name an operator asks for. */
export function splitDoctorArgs(argv: readonly string[]): DoctorArgs {
  const out: DoctorArgs = { json: false, agentArgv: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--metrics') out.agentArgv.push('--metrics-listen', ...(i + 1 < argv.length ? [argv[++i]] : []));
    else if (a.startsWith('--metrics=')) out.agentArgv.push(`--metrics-listen=${a.slice('--metrics='.length)}`);
    else out.agentArgv.push(a);
  }
  return out;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  const args = splitDoctorArgs(argv);
  const loaded = loadCommandConfig('doctor', args.agentArgv, HELP, () => loadAgentConfig(args.agentArgv, process.env));
  if ('exit' in loaded) return loaded.exit;
  // The checks load netlink, SQLite and gRPC: only once the flags are good.
  const { runDoctor } = await import('./run');
  const { exitCodeOf, renderJson, renderText } = await import('./finding');
  const findings = await runDoctor(loaded.config);
  process.stdout.write(args.json ? renderJson(findings) : renderText(findings));
  return exitCodeOf(findings);
}
