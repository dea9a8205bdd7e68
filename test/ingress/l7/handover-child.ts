// The "new process" of a listener handover: adopts the listening socket it
// inherited as fd 3 and routes everything to the backend port in argv[2].
import { silentLogger } from '../../../controller/common/log';
import { L7Proxy } from '../../../ingress/l7';
import { endpoint, RecordingPicker, route } from './fixtures';

const proxy = new L7Proxy({ logger: silentLogger });
proxy.setRoutes(8080, [route('svc', new RecordingPicker([endpoint(Number(process.argv[2]))]))]);
await proxy.listen({ port: 8080, fd: 3 });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
