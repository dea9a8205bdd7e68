// `weft service create|list|delete` (and `weft services`): the services the
// ingress exposes, through the API with an admin identity as `weft status`
// has. create checks every flag with the controller's own request rules
// before connecting, so a mistake exits 2 naming the flag, not a proto field.
import type { ControllerClient } from '../api/client/client';
import type { Backend, Service, ServicePort } from '../api/proto';
import { AFFINITIES, InvalidArgumentError, PROTOCOLS, RACK_POLICIES } from '../api/validate';
import { checkCreateService } from '../service/requests';
import { ADMIN_CLIENT_HELP, ADMIN_CLIENT_SPEC, JSON_FLAG, type Spec, UsageError, guarded, subcommandHelp, withAdminClient, parse, table } from './commands';

const SERVICE_HELP = `usage: weft service create NAME --port PORT[:TARGET][/tcp|udp|http] [--port ...] --selector k=v[,k=v]
                           [--network NAME] [--rack-policy prefer-local|any] [--affinity none|client-ip]
                           [--hostname NAME ...] [--path-prefix /PATH] [--health-path /PATH] [--proxy-protocol]
       weft service list [--json]          (also: weft services)
       weft service delete NAME
  --port         exposed at the ingress; TARGET (default: PORT) on the containers; protocol default tcp.
                 http ports of several services may share a number (routed by --hostname and --path-prefix);
                 a tcp or udp port number belongs to one service
  --selector     endpoint labels that must all match (repeat the flag or separate with commas)
  --network      default "default"
  --hostname     http routing by Host header, e.g. shop.example.com or *.example.com (repeatable, at most 16)
  --path-prefix  http routing by path, e.g. /api
  --health-path  HTTP health check of the backends (default: a TCP connect)
  --proxy-protocol  send a PROXY protocol v2 header to the backends
  create replaces a service of the same name.
${ADMIN_CLIENT_HELP}`;

/** "80", "80:8080", "80/http", "80:8080/udp": a ServicePort, or a UsageError naming --port. */
export function parsePortSpec(spec: string): ServicePort {
  const m = /^(\d{1,5})(?::(\d{1,5}))?(?:\/([a-z]+))?$/.exec(spec);
  if (!m) throw new UsageError(`--port: ${JSON.stringify(spec)} is not PORT[:TARGET][/${PROTOCOLS.join('|')}] (e.g. 80:8080/http)`);
  const port = Number(m[1]);
  const target = m[2] === undefined ? port : Number(m[2]);
  const protocol = m[3] ?? 'tcp';
  for (const [n, what] of [[port, 'port'], [target, 'target port']] as const) {
    if (n < 1 || n > 65535) throw new UsageError(`--port: ${JSON.stringify(spec)}: ${what} ${n} is not 1-65535`);
  }
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) throw new UsageError(`--port: ${JSON.stringify(spec)}: protocol "${protocol}" is not one of ${PROTOCOLS.join(', ')}`);
  return { name: '', port, target_port: target, protocol };
}

/** "app=web" items: a selector map, or a UsageError naming --selector. */
export function parseSelector(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--selector: ${JSON.stringify(item)} is not key=value`);
    const k = item.slice(0, eq);
    if (k in out) throw new UsageError(`--selector: key ${JSON.stringify(k)} given twice`);
    out[k] = item.slice(eq + 1);
  }
  return out;
}

/** Which flag sets a field of the CreateService request, for messages the operator can act on. */
export function flagOfField(field: string): string {
  if (field === 'service.name') return 'NAME';
  const m = /^service\.([a-z_]+)(\[\d+\])?/.exec(field);
  const flags: Record<string, string> = {
    ports: '--port', selector: '--selector', network: '--network', rack_policy: '--rack-policy', affinity: '--affinity',
    hostnames: '--hostname', path_prefix: '--path-prefix', health_path: '--health-path', proxy_protocol: '--proxy-protocol',
  };
  return (m && flags[m[1]]) ?? field;
}

/** The service commands' own flags, beside the administrator's connection flags. */
export const SERVICE_CREATE_FLAGS: Spec = {
  '--port': { list: 'PORT[:TARGET][/tcp|udp|http]' },
  '--selector': { list: 'key=value' },
  '--network': 'a network name',
  '--rack-policy': RACK_POLICIES.join(' or '),
  '--affinity': AFFINITIES.join(' or '),
  '--hostname': { list: 'a host name such as shop.example.com' },
  '--path-prefix': 'a path such as /api',
  '--health-path': 'a path such as /healthz',
  '--proxy-protocol': 'bool',
};
export const SERVICE_LIST_FLAGS: Spec = { ...JSON_FLAG };
export const SERVICE_DELETE_FLAGS: Spec = {};

/** The service the create flags describe, checked by the controller's rules (the network's existence is the controller's to say). */
export function serviceFromFlags(argv: readonly string[]): { service: Service; parsed: ReturnType<typeof parse> } {
  const parsed = parse(argv, { ...ADMIN_CLIENT_SPEC, ...SERVICE_CREATE_FLAGS }, { positional: 1, storeFlags: ['--data-dir'] });
  const { flags, lists, positional } = parsed;
  if (positional.length !== 1) throw new UsageError('give the name of the service (weft service create NAME --port ... --selector ...)');
  const ports = lists.get('--port') ?? [];
  if (ports.length === 0) throw new UsageError('--port is required (PORT[:TARGET][/tcp|udp|http], repeatable)');
  const selector = lists.get('--selector') ?? [];
  if (selector.length === 0) throw new UsageError('--selector is required (key=value of the labels the containers carry)');
  const service: Service = {
    name: positional[0],
    ports: ports.map(parsePortSpec),
    selector: parseSelector(selector),
    network: (flags.get('--network') as string | undefined) ?? 'default',
    rack_policy: (flags.get('--rack-policy') as string | undefined) ?? '',
    hostnames: lists.get('--hostname') ?? [],
    path_prefix: (flags.get('--path-prefix') as string | undefined) ?? '',
    affinity: (flags.get('--affinity') as string | undefined) ?? '',
    health_path: (flags.get('--health-path') as string | undefined) ?? '',
    proxy_protocol: flags.has('--proxy-protocol'),
  };
  try {
    checkCreateService({ service }, [{ name: service.network }]);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new UsageError(`${flagOfField(err.field ?? '')}: ${err.message}`);
    throw err;
  }
  return { service, parsed };
}

const portText = (p: ServicePort) => `${p.port}${p.target_port !== p.port ? `:${p.target_port}` : ''}/${p.protocol}`;

/** One row per service, backends counted when the snapshot came. */
export function serviceRows(services: Service[], backends?: Map<string, Backend[]>): string[][] {
  const head = ['NAME', 'PORTS', 'SELECTOR', 'NETWORK', 'RACK-POLICY', 'AFFINITY', 'ROUTE', ...(backends ? ['BACKENDS'] : [])];
  return [
    head,
    ...services.map((s) => {
      const hasHttp = s.ports.some((p) => p.protocol === 'http');
      const route = hasHttp ? `${s.hostnames.length > 0 ? s.hostnames.join(',') : '*'}${s.path_prefix || '/'}` : '-';
      return [
        s.name, s.ports.map(portText).join(','), Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(','), s.network, s.rack_policy,
        s.affinity, route, ...(backends ? [String(backends.get(s.name)?.length ?? 0)] : []),
      ];
    }),
  ];
}

/** A gRPC failure from the controller: INVALID_ARGUMENT is the operator's input (exit 2, naming the flag), the rest exit 1. */
function callFailure(err: unknown): Error {
  const e = err as { code?: number; details?: string };
  if (e.code === 3 && typeof e.details === 'string') {
    const field = e.details.slice(0, Math.max(0, e.details.indexOf(': ')));
    return new UsageError(`${flagOfField(field)}: ${e.details}`);
  }
  return err as Error;
}

/** One snapshot of WatchServices: every service with its backends, or undefined when none arrives in time. */
async function backendsSnapshot(client: ControllerClient, ms: number): Promise<Map<string, Backend[]> | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      watch.stop();
      resolve(undefined);
    }, ms);
    const watch = client.watch('WatchServices', {
      onEvent(ev) {
        if (ev.kind !== 'SNAPSHOT') return;
        clearTimeout(timer);
        watch.stop();
        resolve(new Map(ev.services.map((st) => [st.service!.name, st.backends])));
      },
    });
  });
}

export async function serviceCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = subcommandHelp(argv, SERVICE_HELP, { anywhere: true });
  if (help !== undefined) return help;
  return guarded(`service ${sub}`, async () => {
    if (sub === 'create') {
      const { service, parsed } = serviceFromFlags(rest);
      await withAdminClient(parsed.flags, parsed.config, async (client) => {
        const saved = await client.call('CreateService', { service }).catch((err) => {
          throw callFailure(err);
        });
        process.stdout.write(`service ${saved.name}: ${saved.ports.map(portText).join(', ')} -> ${Object.entries(saved.selector).map(([k, v]) => `${k}=${v}`).join(',')} in ${saved.network}\n`);
      });
      return 0;
    }
    if (sub === 'list') {
      const { flags, config } = parse(rest, { ...ADMIN_CLIENT_SPEC, ...SERVICE_LIST_FLAGS }, { storeFlags: ['--data-dir'] });
      await withAdminClient(flags, config, async (client) => {
        // The list answers (or fails) at once; the backends come from a watch's first message, which an old controller may not send.
        const { services } = await client.call('ListServices', {});
        const backends = await backendsSnapshot(client, 5000);
        if (flags.has('--json')) {
          process.stdout.write(JSON.stringify(services.map((s) => (backends ? { ...s, backends: backends.get(s.name) ?? [] } : s))) + '\n');
        } else if (services.length === 0) {
          process.stdout.write('no services (weft service create NAME --port ... --selector ...)\n');
        } else {
          process.stdout.write(table(serviceRows(services, backends)));
        }
      });
      return 0;
    }
    if (sub === 'delete') {
      const { flags, positional, config } = parse(rest, { ...ADMIN_CLIENT_SPEC, ...SERVICE_DELETE_FLAGS }, { positional: 1, storeFlags: ['--data-dir'] });
      if (positional.length !== 1) throw new UsageError('give the name of the service to delete (see weft service list)');
      return withAdminClient(flags, config, async (client) => {
        const { deleted } = await client.call('DeleteService', { name: positional[0] }).catch((err) => {
          throw callFailure(err);
        });
        if (!deleted) {
          process.stderr.write(`weft service delete: no service ${positional[0]}\n`);
          return 1;
        }
        process.stdout.write(`deleted service ${positional[0]}\n`);
        return 0;
      });
    }
    throw new UsageError(`unknown subcommand "${sub}" (create, list, delete)`);
  });
}

/** `weft services`: the list. */
export function servicesCommand(argv: string[]): Promise<number> {
  return serviceCommand(['list', ...argv]);
}
