// A client load for the takeover test, run inside the test's namespace:
//   ip netns exec NS node load.cjs URL CONCURRENCY STATUS_FILE
// Every request opens a new connection (so every request is a connection
// attempt the ingress must accept), no retries. Counts ok (200), failures by
// kind (ECONNREFUSED, ECONNRESET, status codes, ...), and writes the counts
// to STATUS_FILE every 50 ms; SIGTERM: the loops stop, requests in flight
// finish, the final counts are written with "final": true and it exits.
'use strict';
const http = require('node:http');
const fs = require('node:fs');
const [url, concurrency, statusFile] = process.argv.slice(2);
const s = { ok: 0, failed: 0, errors: {}, inFlight: 0, final: false };
let stopping = false;
const write = () => fs.writeFileSync(statusFile + '.tmp', JSON.stringify(s)) || fs.renameSync(statusFile + '.tmp', statusFile);
function fail(kind) {
  s.failed++;
  s.errors[kind] = (s.errors[kind] || 0) + 1;
}
function one() {
  if (stopping) return;
  s.inFlight++;
  const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: 5000 }, (res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => {
      if (res.statusCode === 200 && body.includes('"backend"')) s.ok++;
      else fail(`status ${res.statusCode}`);
      s.inFlight--;
      setImmediate(one);
    });
    res.on('error', (e) => {
      fail(e.code || e.message);
      s.inFlight--;
      setImmediate(one);
    });
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => {
    fail(e.code || e.message);
    s.inFlight--;
    setImmediate(one);
  });
}
for (let i = 0; i < Number(concurrency); i++) one();
const timer = setInterval(write, 50);
process.on('SIGTERM', () => {
  stopping = true;
  const end = () => {
    if (s.inFlight > 0) return setTimeout(end, 10);
    clearInterval(timer);
    s.final = true;
    write();
    process.exit(0);
  };
  end();
});
