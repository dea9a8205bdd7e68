// A controlling process on its own, as an agent is: it starts a wireguard-go
// device, configures it and exits ("configure"), as an agent that is then
// restarted would; or starts and stops one ("start-stop"), to show stop()
// finishes in a process with nothing else keeping it alive. The config (with
// its private key) comes on stdin, never on the command line, where every
// local user could read it.
import { readFileSync } from 'node:fs';
import { reconcileDevice } from '../../../dataplane/wireguard/reconcile';
import { startUserspaceDevice } from '../../../dataplane/wireguard/userspace';

const { mode, name, netns, config } = JSON.parse(readFileSync(0, 'utf8'));
const dev = await startUserspaceDevice({ name, netns });
if (mode === 'start-stop') {
  await dev.stop();
  process.stdout.write(JSON.stringify({ pid: dev.pid, stopped: true }) + '\n');
} else {
  const counts = await reconcileDevice(dev, config);
  process.stdout.write(JSON.stringify({ pid: dev.pid, adopted: dev.adopted, counts }) + '\n');
}
