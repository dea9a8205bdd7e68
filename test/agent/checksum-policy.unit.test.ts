import { describe, expect, it } from 'vitest';
import { decideTxChecksum, kernelVersion } from '../../cni-plugin/agent/host/checksum-policy';
import { loadAgentConfig } from '../../cni-plugin/agent/config';

describe('VXLAN TX checksum offload policy', () => {
  it('reads kernel versions', () => {
    expect(kernelVersion('6.18.44-fc-v657')).toEqual([6, 18]);
    expect(kernelVersion('5.4.0-150-generic')).toEqual([5, 4]);
    expect(kernelVersion('garbage')).toBeUndefined();
  });

  it.each([
    ['4.18.0-513.el8.x86_64', true],
    ['5.4.0-150-generic', true],
    ['5.6.19', true],
    ['5.7.0', false],
    ['5.15.0-91-generic', false],
    ['6.18.44-fc-v657', false],
    ['not-a-kernel', true],
  ])('auto on kernel %s turns the offload off: %s', (rel, disable) => {
    const d = decideTxChecksum('auto', rel);
    expect(d.disable).toBe(disable);
    expect(d.reason).toContain(rel);
  });

  it('follows an explicit setting whatever the kernel', () => {
    expect(decideTxChecksum('off', '6.18.0').disable).toBe(true);
    expect(decideTxChecksum('on', '4.18.0').disable).toBe(false);
  });
});

describe('--vxlan-tx-checksum', () => {
  const base = ['--server', '10.0.0.1:7443', '--host-name', 'h1'];

  it('defaults to auto and takes auto|on|off from flag or environment', () => {
    expect(loadAgentConfig(base, {}).vxlanTxChecksum).toBe('auto');
    expect(loadAgentConfig([...base, '--vxlan-tx-checksum', 'on'], {}).vxlanTxChecksum).toBe('on');
    expect(loadAgentConfig(base, { WEFT_VXLAN_TX_CHECKSUM: 'off' }).vxlanTxChecksum).toBe('off');
  });

  it('refuses anything else, naming the flag and the allowed values', () => {
    expect(() => loadAgentConfig([...base, '--vxlan-tx-checksum', 'maybe'], {})).toThrow(/--vxlan-tx-checksum.*"maybe" is not auto\|on\|off/);
  });
});
