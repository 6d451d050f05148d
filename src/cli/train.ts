// `swav train --config FILE [section.key=value ...]`.
import { configReference, loadConfig } from '../train/config.js';
import { train } from '../train/trainer.js';
import type { Command } from 'commander';
import { UsageError, action, examples, subcommand } from './options.js';
import { ProgressLine } from './progress.js';

/** The trainer's log lines and its progress line (redrawn on a terminal, every 30 s in logs). */
function reporter() {
  const out = new ProgressLine(process.stderr);
  return { log: (line: string) => out.log(line), progress: (line: string | null) => (line === null ? out.end() : out.update(line)) };
}

interface TrainOptions {
  config: string;
  data?: string;
  out?: string;
  device?: string;
}

async function runTrain(overrides: string[], o: TrainOptions): Promise<number> {
  if (o.data) overrides.push(`data.path=${JSON.stringify(o.data)}`);
  if (o.out) overrides.push(`run.out=${JSON.stringify(o.out)}`);
  if (o.device) overrides.push(`run.device=${JSON.stringify(o.device)}`);
  for (const v of overrides) if (!v.includes('=')) throw new UsageError(`train: '${v}' is not an option nor a section.key=value override`);
  const c = loadConfig(o.config, overrides);
  const r = await train(c, reporter());
  if (r.knnTop1 !== undefined)
    console.log(
      JSON.stringify({
        knn_top1: r.knnTop1,
        ...(r.linearTop1 !== undefined ? { linear_top1: r.linearTop1 } : {}),
        epochs: r.epochsDone,
        iterations: r.iterations,
      }),
    );
  return r.interrupted ? 130 : 0;
}

export function trainCommand(swav: Command): void {
  subcommand(
    swav,
    'train',
    'pretraining (method: swav, deepclusterv2 or selav2) in a run directory; running it again resumes; ' +
      'Ctrl-C saves a checkpoint and stops',
  )
    .usage('--config FILE [section.key=value ...] [method=NAME] [options]')
    .argument('[overrides...]', 'configuration keys to override, as section.key=value (values in YAML)')
    .requiredOption('--config <file>', 'the YAML configuration (configs/ has the reference recipes)')
    .option('--data <path>', 'the dataset (data.path)')
    .option('--out <dir>', 'the run directory (run.out)')
    .option('--device <device>', 'cpu, cuda or cuda:N (run.device)')
    .addHelpText(
      'after',
      `${examples(
        'swav train --config configs/quickstart-fashion-mnist.yaml',
        'swav train --config configs/swav_400ep_pretrain.yaml --data ~/imagenet --out runs/swav400 optim.batch_size=64',
      )}
Configuration keys (section.key: type (default)):
${configReference()}`,
    )
    .action(action(runTrain));
}
