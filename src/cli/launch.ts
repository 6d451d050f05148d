// `swav launch`: torchrun's job for swav commands. N processes on this machine with torchrun's variables (RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); one that fails stops the others; Ctrl-C
// and SIGTERM are passed on once (each rank then saves its checkpoint).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import { UsageError, action, examples, int, subcommand } from './options.js';

interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  graceSeconds: number;
}

const log = (s: string) => process.stderr.write(`swav launch: ${s}\n`);

async function launch(command: string[], o: LaunchOptions): Promise<number> {
  if (o.nprocPerNode < 1 || o.nnodes < 1) throw new UsageError('launch: --nproc-per-node and --nnodes must be at least 1');
  if (o.nodeRank < 0 || o.nodeRank >= o.nnodes) throw new UsageError(`launch: --node-rank must be in 0..${o.nnodes - 1}`);
  if (command[0] === 'launch') throw new UsageError('launch: the command to launch cannot be launch itself');
  const world = o.nprocPerNode * o.nnodes;
  const ranks: { rank: number; child: ChildProcess }[] = [];
  let failure: { rank: number; code: number } | null = null;
  let signalled = false;
  const stopOthers = (signal: NodeJS.Signals) => {
    for (const r of ranks) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill(signal);
  };
  let killTimer: NodeJS.Timeout | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return stopOthers('SIGKILL');
    signalled = true;
    log(`${signal}: passing it to the ${ranks.length} ranks (again to kill them at once)`);
    stopOthers('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const done = Array.from({ length: o.nprocPerNode }, (_, local) => {
      const rank = o.nodeRank * o.nprocPerNode + local;
      const env = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(world),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(o.nodeRank),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
      };
      // each rank in its own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it on once
      const child = spawn(process.execPath, [process.argv[1], ...command], { env, stdio: 'inherit', detached: true });
      ranks.push({ rank, child });
      return new Promise<void>((resolve) =>
        child.on('exit', (code, signal) => {
          const status = code ?? 1;
          if (status !== 0 && status !== 130 && !failure && !signalled) {
            failure = { rank, code: status };
            log(
              `rank ${rank} (pid ${child.pid}) ${signal ? `was killed by ${signal}` : `exited with status ${status}`}; stopping the other ranks`,
            );
            stopOthers('SIGTERM');
            killTimer = setTimeout(() => stopOthers('SIGKILL'), o.graceSeconds * 1000);
          }
          resolve();
        }),
      );
    });
    await Promise.all(done);
  } finally {
    if (killTimer) clearTimeout(killTimer);
    stopOthers('SIGKILL'); // nothing is left behind
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const f = failure as { rank: number; code: number } | null;
  if (f) return f.code;
  if (signalled) return 130;
  return ranks.some((r) => r.child.exitCode === 130) ? 130 : 0;
}

export function launchCommand(swav: Command): void {
  subcommand(
    swav,
    'launch',
    "runs a swav command as N processes of a data-parallel job, with torchrun's environment " +
      '(RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); on several machines, once per machine',
  )
    .usage('--nproc-per-node N [--nnodes M --node-rank R --master-addr HOST --master-port PORT] <command> [its options]')
    .argument('<command...>', 'the swav command to run and its arguments (e.g. train --config FILE)')
    .requiredOption('--nproc-per-node <n>', 'processes on this machine', int)
    .option('--nnodes <m>', 'machines in the job', int, 1)
    .option('--node-rank <r>', "this machine's number, 0..nnodes-1", int, 0)
    .option('--master-addr <host>', 'the machine of rank 0 (it serves the rendezvous)', '127.0.0.1')
    .option('--master-port <port>', 'its port', int, 29500)
    .option('--grace-seconds <s>', 'after a rank fails, how long the others have to stop before they are killed', int, 30)
    .passThroughOptions()
    .addHelpText(
      'after',
      examples(
        'swav launch --nproc-per-node 2 train --config configs/quickstart-fashion-mnist.yaml',
        'swav launch --nproc-per-node 4 --nnodes 2 --node-rank 0 --master-addr node0 train --config configs/swav_400ep_pretrain.yaml',
      ),
    )
    .action(action(launch));
}
