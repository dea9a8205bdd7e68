// `weft host rotate-key HOST... | --all`: asks hosts to rotate their WireGuard
// keys. The controller only raises each host's rotation generation; the host's
// agent sees it in the topology watch and rotates on the host (the private key
// never leaves it): a gateway drains itself first, so the others carry its
// traffic meanwhile. `weft datacenter list` shows the new key's first
// characters once the agent has registered it.
import { checkHostName } from '../api/validate';
import { ADMIN_CLIENT_HELP, ADMIN_CLIENT_SPEC, JSON_FLAG, type Spec, UsageError, guarded, withAdminClient, parse } from './commands';

export const ROTATE_KEY_HELP = `usage: weft host rotate-key HOST [HOST...] [--json]
       weft host rotate-key --all [--json]
  asks each host's agent to make a new WireGuard key pair and move to it (a gateway drains itself
  first, so the other gateways carry its traffic); agents also rotate on their own every
  --wg-key-rotation (default 720h). weft datacenter list shows the new key once it is registered
${ADMIN_CLIENT_HELP}`;

export const ROTATE_KEY_FLAGS: Spec = { '--all': 'bool', ...JSON_FLAG };

export async function rotateKeyCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(ROTATE_KEY_HELP);
    return 0;
  }
  return guarded('host rotate-key', async () => {
    const { flags, positional, config } = parse(argv, { ...ADMIN_CLIENT_SPEC, ...ROTATE_KEY_FLAGS }, { positional: Infinity, storeFlags: ['--data-dir'] });
    const all = flags.has('--all');
    if (all && positional.length > 0) throw new UsageError('give host names or --all, not both');
    if (!all && positional.length === 0) throw new UsageError('give the hosts whose WireGuard keys to rotate, or --all (see weft hosts)');
    for (const h of positional) {
      const bad = checkHostName(h, 'HOST');
      if (bad) throw new UsageError(bad);
    }
    await withAdminClient(flags, config, async (client) => {
      const r = await client.call('RotateWireGuardKeys', { hosts: positional, all });
      if (flags.has('--json')) process.stdout.write(JSON.stringify(r) + '\n');
      else if (r.hosts.length === 0) process.stdout.write('no registered hosts: nothing to rotate\n');
      else {
        for (const h of r.hosts) process.stdout.write(`${h.host}: key rotation requested (generation ${h.wg_key_rotation}); its agent rotates when it sees it\n`);
      }
    });
    return 0;
  });
}
