// A controlling process that starts a wireguard-go device, configures it and
// exits, as an agent that is restarted would: the test then adopts the device
// from a new process. The config (with its private key) comes on stdin, never
// on the command line, where every local user could read it.
import { readFileSync } from 'node:fs';
import { reconcileDevice } from '../../../dataplane/wireguard/reconcile';
import { startUserspaceDevice } from '../../../dataplane/wireguard/userspace';

const { name, netns, config } = JSON.parse(readFileSync(0, 'utf8'));
const dev = await startUserspaceDevice({ name, netns });
const counts = await reconcileDevice(dev, config);
process.stdout.write(JSON.stringify({ pid: dev.pid, adopted: dev.adopted, counts }) + '\n');
