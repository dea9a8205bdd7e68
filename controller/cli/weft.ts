// The `weft` command: one executable, one subcommand per role. Each role is
// loaded only when asked for, so `weft version` does not pay for gRPC,
// SQLite or netlink start-up.
import { weftVersion } from '../common/version';

type Command = { summary: string; run: (argv: string[]) => Promise<number> };

const commands: Record<string, Command> = {
  version: {
    summary: 'print the weft version',
    run: async () => {
      process.stdout.write(`weft ${weftVersion()}\n`);
      return 0;
    },
  },
  controller: {
    summary: 'run the controller daemon (gRPC API, store, IPAM, metrics)',
    run: async (argv) => (await import('./commands')).controllerCommand(argv),
  },
  token: {
    summary: 'create, list or delete bootstrap tokens for joining hosts and ingresses',
    run: async (argv) => (await import('./commands')).tokenCommand(argv),
  },
  network: {
    summary: 'list or add overlay networks in the cluster config',
    run: async (argv) => (await import('./commands')).networkCommand(argv),
  },
  host: {
    summary: 'list hosts, or delete one (releases its subnets and endpoints, revokes its certificates)',
    run: async (argv) => (await import('./cluster-commands')).hostCommand(argv),
  },
  cert: {
    summary: 'list issued and revoked client certificates, or revoke one by serial',
    run: async (argv) => (await import('./commands')).certCommand(argv),
  },
  'admin-cert': {
    summary: 'issue an administrator client certificate from the cluster CA',
    run: async (argv) => (await import('./commands')).adminCertCommand(argv),
  },
  agent: {
    summary: 'run the host agent (joins the cluster, builds the overlay, serves the CNI plugin)',
    run: async (argv) => (await import('../../cni-plugin/agent/command')).agentCommand(argv),
  },
  doctor: {
    summary: 'check this host: kernel, MTU, offload, iptables, overlay entries, stray links, controller, certificate, clock, agent',
    run: async (argv) => (await import('../../cni-plugin/agent/doctor/command')).doctorCommand(argv),
  },
  explain: {
    summary: 'the path a packet takes between two container addresses, hop by hop, and where and why it would be dropped',
    run: async (argv) => (await import('../../cni-plugin/agent/explain/command')).explainCommand(argv),
  },
  'install-cni': {
    summary: 'install the weft CNI plugin binary and network config on this host',
    run: async (argv) => (await import('../../cni-plugin/install-cni')).installCniCommand(argv),
  },
  status: {
    summary: 'print the cluster status: controller, leader, counts, hosts per datacenter and rack by health',
    run: async (argv) => (await import('./cluster-commands')).statusCommand(argv),
  },
  hosts: {
    summary: 'list the hosts: subnets, health, agent version, programmed vs desired overlay entries (weft host list)',
    run: async (argv) => (await import('./cluster-commands')).hostsCommand(argv),
  },
  endpoints: {
    summary: "list the containers' endpoints: container, network, address, host, interface, labels",
    run: async (argv) => (await import('./cluster-commands')).endpointsCommand(argv),
  },
  service: {
    summary: 'create, list or delete the services the ingress exposes',
    run: async (argv) => (await import('./service-commands')).serviceCommand(argv),
  },
  services: {
    summary: 'list the services with their backends (weft service list)',
    run: async (argv) => (await import('./service-commands')).servicesCommand(argv),
  },
  datacenter: {
    summary: 'add, list or delete datacenters and add, drain or remove their WireGuard gateways',
    run: async (argv) => (await import('./datacenter-commands')).datacenterCommand(argv),
  },
  datacenters: {
    summary: 'list the datacenters with their gateways (weft datacenter list)',
    run: async (argv) => (await import('./datacenter-commands')).datacentersCommand(argv),
  },
  ingress: {
    summary: 'run the ingress (edge load balancer into the services\' containers)',
    run: async (argv) => (await import('../../ingress/command')).ingressCommand(argv),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: weft <command> [flags]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`weft: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`weft: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
