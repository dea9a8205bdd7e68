// Child for the crash test: allocates and releases addresses as fast as it
// can, printing each change only after the store call returned (committed),
// until the parent kills it.
import { openIpamStore } from '../../cni-plugin/agent/ipam-store';

const [path] = process.argv.slice(2);
const store = openIpamStore({ path });
for (let i = 0; ; i++) {
  const cid = `crash-${i}`;
  const { allocation } = store.allocate('crash', '10.77.0.0/16', '10.77.0.1', cid, 'eth0');
  process.stdout.write(`A ${cid} ${allocation.ip}\n`);
  // free every other one so the run exercises deletes and the cursor too
  if (i % 2 === 1) {
    store.release('crash', cid, 'eth0');
    process.stdout.write(`R ${cid}\n`);
  }
}
