// weft's errors and its logs: every error class has a documented code, and a
// logged error keeps what it knows (type, message, stack, code, cause), read
// back from the JSON lines a real weft logger writes.
import { describe, expect, it } from 'vitest';
import { ServerCertError } from '../../controller/api/client/server-cert';
import { IdentityError } from '../../controller/api/client/credentials';
import { UsageError } from '../../controller/cli/commands';
import { CidrError } from '../../controller/common/cidr';
import { ConfigError } from '../../controller/common/config-sources';
import { CODES, InvalidArgumentError, WeftError } from '../../controller/common/errors';
import { createLogger, silentLogger } from '../../controller/common/log';
import {
  ClusterConfigError, LeaseContentionError, LeaseLostError, LeaseRequestError, OrphanedLeasesError, PoolExhaustedError, UnknownNetworkError,
} from '../../controller/ipam/errors';
import { PkiError } from '../../controller/pki/errors';
import { TokenError } from '../../controller/pki/tokens';
import {
  CorruptRecordError, EndpointConflictError, EndpointMismatchError, HostConflictError, RecordNotFoundError, RegistryContentionError,
} from '../../controller/registry/errors';
import { HostNameTakenError, JoinRateLimitedError, PermissionError, UnauthenticatedError, WatchLimitError } from '../../controller/service/status';
import { StoreUrlError } from '../../controller/store/index';
import { CompactedError, LeaseNotFoundError, StoreUnavailableError } from '../../controller/store/types';
import { StartAborted } from '../../controller/common/command';
import { ServicePortConflictError } from '../../controller/registry/services';
import { DatacenterExistsError, DatacenterInUseError, GatewayRuleError, LastActiveGatewayError } from '../../controller/registry/datacenters';
import { HandoffError } from '../../ingress/handoff';
import { CNI_ERR, CniError } from '../../cni-plugin/cni/types';
import { EthtoolError } from '../../dataplane/ethtool';
import { IptablesExecError, IptablesRestoreError } from '../../dataplane/iptables/restore';
import { NetlinkError } from '../../dataplane/netlink/errors';
import { SysctlError, SysctlNotFoundError } from '../../dataplane/sysctl';
import { WireGuardDeviceError, WireGuardProtocolError, WireGuardUapiError } from '../../dataplane/wireguard/errors';
import { captureLogger } from '../helpers/log';

/** One of every error class weft declares. */
function everyError(): WeftError[] {
  return [
    new ConfigError('x'), new UsageError('x'), new StoreUrlError('x', 'y'), new InvalidArgumentError('x'), new CidrError('x'),
    new PkiError('x'), new TokenError('x'), new IdentityError('x'), new ServerCertError('x', 'name'),
    new PermissionError('x'), new UnauthenticatedError('x'), new WatchLimitError('x'), new HostNameTakenError('x'), new JoinRateLimitedError('x'),
    new ClusterConfigError('f', 'x'), new OrphanedLeasesError([]), new LeaseRequestError('x'), new UnknownNetworkError('n', []),
    new PoolExhaustedError({ network: 'n', pool: '10.0.0.0/8', hostPrefixLength: 24, inUse: 1 }),
    new LeaseLostError('n', 's', 'h', 'x'), new LeaseContentionError('x'),
    new EndpointConflictError('n', 'ip', { containerId: 'c', host: 'h' }), new EndpointMismatchError('x'), new RecordNotFoundError('x'),
    new CorruptRecordError('k', 'x'), new RegistryContentionError('x'), new HostConflictError('vtep_mac', 'x', 'h'),
    new StoreUnavailableError('x'), new CompactedError(1, 2), new LeaseNotFoundError('x'),
    new IptablesRestoreError({ tool: 'iptables-restore', exitCode: 1, stderr: '', document: '' }), new IptablesExecError('iptables-save', 1, ''),
    new StartAborted(), new ServicePortConflictError('x', 'f', 'other'), new DatacenterExistsError('dc'), new GatewayRuleError('f', 'x'), new LastActiveGatewayError('f', 'x'), new DatacenterInUseError('dc', ['h']), new HandoffError('EPROTO', 'x'),
    new CniError(CNI_ERR.INVALID_CONFIG, 'x'),
    new NetlinkError(17, 'x'), new EthtoolError(95, 'x'), new SysctlError('k', 'EACCES', 'write'), new SysctlNotFoundError('k'),
    new WireGuardProtocolError('wg0', 'get', 'x'), new WireGuardUapiError('wg0', 'set', 22, 'x'), new WireGuardDeviceError('wg0', 'x'),
  ];
}

describe('weft errors', () => {
  it('every class extends WeftError and carries a documented code; every WEFT_ code is in use', () => {
    const all = everyError();
    for (const e of all) {
      expect(e, e.name).toBeInstanceOf(WeftError);
      expect(e.name).toBe(e.constructor.name);
      const documented = e.code in CODES || /^WEFT_CNI_[A-Z_]+$/.test(e.code) || /^E[A-Z0-9]+$/.test(e.code);
      expect(documented, `${e.name}: ${e.code}`).toBe(true);
    }
    expect(new Set(all.map((e) => e.code).filter((c) => c in CODES))).toEqual(new Set(Object.keys(CODES)));
    // kernel errors keep the errno name, as Node's system errors do
    expect([new NetlinkError(17, 'x').code, new EthtoolError(95, 'x').code, new SysctlNotFoundError('k').code]).toEqual(['EEXIST', 'EOPNOTSUPP', 'ENOENT']);
  });

  it('a CniError is WEFT_CNI_<name> for weft and its number for the runtime', () => {
    for (const [name, n] of Object.entries(CNI_ERR)) {
      const e = new CniError(n, 'x');
      expect([e.code, e.cniCode]).toEqual([`WEFT_CNI_${name}`, n]);
    }
  });
});

describe('weft logs', () => {
  it('a logged error carries its type, message, stack, code and cause', () => {
    const { logger, lines } = captureLogger();
    const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    logger.warn({ err: new StoreUnavailableError('cannot commit to the SQLite store', { cause }), attempt: 3 }, 'write failed; retrying');

    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({
      level: 'warn', msg: 'write failed; retrying', attempt: 3, pid: process.pid,
      err: { type: 'StoreUnavailableError', code: 'WEFT_STORE_UNAVAILABLE', message: 'cannot commit to the SQLite store: ENOSPC: no space left on device, write' },
    });
    // where it was thrown, then the cause's own stack
    expect(line.err!.stack).toMatch(/^StoreUnavailableError: cannot commit to the SQLite store\n\s+at .*errors-log\.unit\.test\.ts/);
    expect(line.err!.stack).toContain('caused by: Error: ENOSPC: no space left on device, write');
  });

  it("an error's own fields are kept: a kernel refusal says what was tried, a plain TypeError still has its stack", () => {
    const { logger, lines } = captureLogger();
    logger.error({ err: new NetlinkError(17, 'route add 10.244.3.0/24', 'File exists') }, 'reconcile failed');
    logger.error({ err: new TypeError("Cannot read properties of undefined (reading 'subnet')") }, 'handler failed');
    expect(lines[0].err).toMatchObject({ type: 'NetlinkError', code: 'EEXIST', errno: 17, op: 'route add 10.244.3.0/24', detail: 'File exists' });
    expect(lines[1].err).toMatchObject({ type: 'TypeError', message: "Cannot read properties of undefined (reading 'subnet')" });
    expect(lines[1].err!.stack).toMatch(/^TypeError: .*\n\s+at /);
  });

  it('createLogger writes one JSON object per line with pid and the given fields; silentLogger writes nothing', () => {
    const out: string[] = [];
    const log = createLogger({ level: 'info', base: { host: 'h1' }, destination: { write: (s: string) => void out.push(s) } });
    log.debug('not at this level');
    log.info({ network: 'blue' }, 'ready');
    expect(out).toHaveLength(1);
    expect(out[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(out[0])).toMatchObject({ level: 30, pid: process.pid, host: 'h1', network: 'blue', msg: 'ready' });
    expect(silentLogger.isLevelEnabled('fatal')).toBe(false);
  });
});
