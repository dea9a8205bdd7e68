// Inputs the CNI fuzz (test/fuzz/cni.test.ts) found answered wrongly, at the
// level of the agent's frame decoder, so they run without root or an agent.
import { describe, expect, it } from 'vitest';
import { decodeRequest } from '../../cni-plugin/cni/server';
import { CNI_ERR, CniError } from '../../cni-plugin/cni/types';

function frame(env: string, stdin = '{}'): Buffer {
  const e = Buffer.from(env);
  const s = Buffer.from(stdin);
  const head = Buffer.alloc(8);
  head.write('WCN1');
  head.writeUInt32BE(e.length, 4);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(s.length);
  return Buffer.concat([head, e, len, s]);
}

describe('CNI fuzz regressions: frame decoding', () => {
  it('an environment past 64 KiB (a long CNI_ARGS) is INVALID_ENV, not a decoding failure', () => {
    let thrown: unknown;
    try {
      decodeRequest(frame(`CNI_COMMAND=ADD\0CNI_ARGS=K8S_POD_NAMESPACE=${'x'.repeat(70_000)}\0`));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CniError);
    expect(thrown).toMatchObject({ cniCode: CNI_ERR.INVALID_ENV, message: 'the CNI_* environment is larger than 64 KiB' });
  });

  it('an environment of exactly 64 KiB is still read', () => {
    const prefix = 'CNI_COMMAND=ADD\0CNI_ARGS=';
    const env = prefix + 'a'.repeat(64 * 1024 - prefix.length - 1) + '\0';
    expect(Buffer.byteLength(env)).toBe(64 * 1024);
    expect(decodeRequest(frame(env))?.env.CNI_COMMAND).toBe('ADD');
  });
});
