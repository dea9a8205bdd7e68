// A CNI request sent to an agent's socket as the shim (cni-plugin/shim/weft.c)
// frames it, for tests that go through the server rather than the handlers.
import { createConnection } from 'node:net';

/** One request as the shim frames it ("WCN1", env, stdin); resolves with the exit status and the JSON it prints. */
export function callAgent(socketPath: string, env: Record<string, string>, stdin: object): Promise<{ status: number; out: Record<string, unknown> }> {
  const envBuf = Buffer.from(Object.entries(env).map(([k, v]) => `${k}=${v}\0`).join(''));
  const inBuf = Buffer.from(JSON.stringify(stdin));
  const head = Buffer.alloc(8);
  head.write('WCN1');
  head.writeUInt32BE(envBuf.length, 4);
  const inLen = Buffer.alloc(4);
  inLen.writeUInt32BE(inBuf.length);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = createConnection(socketPath);
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', reject);
    c.on('end', () => {
      const reply = Buffer.concat(chunks);
      const text = reply.subarray(12).toString('utf8');
      // a verb without a result (DEL, CHECK, STATUS) succeeds with empty stdout
      resolve({ status: reply.readUInt32BE(4), out: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> });
    });
    c.end(Buffer.concat([head, envBuf, inLen, inBuf]));
  });
}

