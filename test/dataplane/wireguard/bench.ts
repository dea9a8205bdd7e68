// How long the wireguard-go device layer takes on this machine: starting
// wireguard-go in a namespace, configuring 1000 peers from nothing, a
// reconcile that finds nothing to do, and one with one peer changed.
// Run as root: npx tsx test/dataplane/wireguard/bench.ts
import { rmSync } from 'node:fs';
import { netnsAdd, netnsDelete } from '../../../dataplane/netlink/netns';
import { reconcileDevice } from '../../../dataplane/wireguard/reconcile';
import { generateKeyPair, type DeviceConfig } from '../../../dataplane/wireguard/types';
import { DEFAULT_LOG_DIR, startUserspaceDevice, type UserspaceDevice } from '../../../dataplane/wireguard/userspace';
import { recordOwnedNetns, uniqueName } from '../../helpers/names';

const RUNS = 5;
const PEERS = 1000;

const ms = (t0: number) => performance.now() - t0;
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)].toFixed(0)} ms (min ${s[0].toFixed(0)}, max ${s[s.length - 1].toFixed(0)}, n=${s.length})`;
};

async function main(): Promise<void> {
  const ns = uniqueName('wbn');
  netnsAdd(ns);
  recordOwnedNetns(ns);
  const name = uniqueName('wbd');
  let dev: UserspaceDevice | undefined;
  try {
    const starts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      dev = await startUserspaceDevice({ name, netns: ns });
      starts.push(ms(t0));
      if (i < RUNS - 1) await dev.stop();
    }
    const cfg: DeviceConfig = {
      privateKey: generateKeyPair().privateKey,
      listenPort: 51820,
      peers: Array.from({ length: PEERS }, (_, i) => ({ publicKey: generateKeyPair().publicKey, endpoint: `192.0.2.${(i % 250) + 1}:${51820 + (i % 100)}`, allowedIps: [`10.${i >> 8}.${i & 255}.0/24`] })),
    };
    let t0 = performance.now();
    const first = await reconcileDevice(dev!, cfg);
    const firstMs = ms(t0);
    if (first.peersAdded !== PEERS) throw new Error(`added ${first.peersAdded} peers, not ${PEERS}`);
    const noop: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      t0 = performance.now();
      if ((await reconcileDevice(dev!, cfg)).writes !== 0) throw new Error('a reconcile with nothing to do wrote');
      noop.push(ms(t0));
    }
    const one: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      cfg.peers[500] = { ...cfg.peers[500], allowedIps: [`10.200.${i}.0/24`] };
      t0 = performance.now();
      const c = await reconcileDevice(dev!, cfg);
      if (c.peersUpdated !== 1 || c.peersUnchanged !== PEERS - 1) throw new Error(`one change became ${JSON.stringify(c)}`);
      one.push(ms(t0));
    }
    console.log(`wireguard-go start (spawn in a netns until the UAPI socket answers): ${summary(starts)}`);
    console.log(`reconcile ${PEERS} peers onto an empty device: ${firstMs.toFixed(0)} ms`);
    console.log(`reconcile ${PEERS} peers, nothing to do (get + plan, 0 writes): ${summary(noop)}`);
    console.log(`reconcile ${PEERS} peers, one peer's allowed IPs changed (1 write): ${summary(one)}`);
  } finally {
    await dev?.stop();
    rmSync(`${DEFAULT_LOG_DIR}/${name}.log`, { force: true });
    netnsDelete(ns);
  }
}

await main();
