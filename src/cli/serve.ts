// `swav serve RUN_DIR [--port 6006] [--host 127.0.0.1]`: a live dashboard of a run directory or a folder of them.
import type { Command } from 'commander';
import { checkRoot } from '../serve/runs.js';
import { listen } from '../serve/server.js';
import { UsageError, action, examples, int, subcommand } from './options.js';

interface ServeOptions {
  port: number;
  host: string;
}

async function serve(root: string, o: ServeOptions): Promise<number> {
  if (o.port < 0 || o.port > 65535) throw new UsageError(`serve: --port ${o.port}: a port is 0 to 65535 (0: any free one)`);
  checkRoot(root);
  const { server, url } = await listen(root, o.port, o.host);
  process.stderr.write(`serving ${root} at ${url} (Ctrl-C stops)\n`);
  await new Promise<void>((stop) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop());
  });
  server.closeAllConnections(); // the event streams stay open otherwise
  await new Promise((closed) => server.close(closed));
  return 0;
}

export function serveCommand(swav: Command): void {
  subcommand(
    swav,
    'serve',
    'a live dashboard of a run directory (or a folder of them): loss, lr, throughput, prototype usage, kNN evaluations, a prototype gallery',
  )
    .argument('<run-dir>', 'a run directory (run.out) or a folder of run directories')
    .option('--port <port>', 'the port (0: any free one)', int, 6006)
    .option('--host <host>', 'the address to bind (another than 127.0.0.1 opens the dashboard to the network)', '127.0.0.1')
    .addHelpText('after', examples('swav serve runs/quickstart-fashion-mnist', 'swav serve runs --port 8080'))
    .action(action(serve));
}
