// `swav train --config FILE [section.key=value ...]`.
import { configReference, loadConfig } from '../train/config.js';
import { train } from '../train/trainer.js';
import { Flags, UsageError } from './args.js';

function reporter() {
  const tty = process.stderr.isTTY;
  let drawn = false;
  let last = 0;
  return {
    log: (line: string) => {
      if (drawn) { process.stderr.write('\n'); drawn = false; }
      process.stderr.write(`${line}\n`);
    },
    progress: (line: string | null) => {
      if (line === null) {
        if (drawn) process.stderr.write('\n');
        drawn = false;
      } else if (tty) {
        process.stderr.write(`\r${line}\x1b[K`);
        drawn = true;
      } else if (Date.now() - last > 30_000) { // a line now and then in logs
        last = Date.now();
        process.stderr.write(`${line}\n`);
      }
    },
  };
}

export async function trainCommand(f: Flags): Promise<number> {
  if (f.bool('help')) {
    process.stdout.write('usage: swav train --config FILE [section.key=value ...] [method=NAME] [--data PATH] [--out DIR] [--device D]\n\n' +
      `${configReference()}`);
    return 0;
  }
  const file = f.string('config');
  const overrides = [...f.parsed.positionals];
  const data = f.optional('data');
  const out = f.optional('out');
  const device = f.optional('device');
  f.done();
  if (data) overrides.push(`data.path=${JSON.stringify(data)}`);
  if (out) overrides.push(`run.out=${JSON.stringify(out)}`);
  if (device) overrides.push(`run.device=${JSON.stringify(device)}`);
  for (const o of overrides) if (!o.includes('=')) throw new UsageError(`train: '${o}' is not an option nor a section.key=value override`);
  const c = loadConfig(file, overrides);
  const r = await train(c, reporter());
  if (r.knnTop1 !== undefined) console.log(JSON.stringify({ knn_top1: r.knnTop1, epochs: r.epochsDone, iterations: r.iterations }));
  return r.interrupted ? 130 : 0;
}
