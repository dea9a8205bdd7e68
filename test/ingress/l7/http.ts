// A plain HTTP client for the proxy tests: one request, the whole answer.
import { request, type Agent, type OutgoingHttpHeaders } from 'node:http';

export type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

export function send(url: string, o: { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; agent?: Agent | false } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, agent: o.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}
