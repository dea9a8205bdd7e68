// Child for the token-source test: reads its settings as `weft agent` does
// (flags, WEFT_* variables) and joins the cluster with the agent's own
// identity phase, then prints what it did and stays up, so the parent can
// look at this running process's /proc/PID/cmdline. Killed by the parent.
import { loadAgentConfig } from '../../cni-plugin/agent/config';
import { establishIdentity } from '../../cni-plugin/agent/start-identity';
import { silentLogger } from '../../controller/common/log';

const config = loadAgentConfig(process.argv.slice(2), process.env);
const { credentials } = await establishIdentity(config, silentLogger, undefined);
process.stdout.write(`${JSON.stringify({ joined: credentials.hostName, tokenSource: config.tokenSource, warnings: config.warnings ?? [] })}\n`);
setInterval(() => {}, 1 << 30);
