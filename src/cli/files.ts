// `swav convert IN OUT` and `swav hub list | download NAME`.
import { torch } from '../index.js';
import { MODELS, ALIASES, downloadModel, findStateDict } from '../hub/index.js';
import { fileKind } from '../torch/io/index.js';
import type { Command } from 'commander';
import { UsageError, action, examples, subcommand } from './options.js';
import { progressBar } from './progress.js';
import { Tensor } from '../torch/tensor.js';

/** Converts between .pth / .pth.tar (zip or legacy) and .safetensors, by extension. */
function convert(input: string, output: string): number {
  if (fileKind(input) === 'npy' || fileKind(output) === 'npy')
    throw new UsageError('convert: converts .pth/.pth.tar and .safetensors files');
  torch.tidy(() => {
    const obj = torch.load(input);
    // safetensors holds a flat dict of tensors: the state dict of a training checkpoint
    const data = fileKind(output) === 'safetensors' ? Object.fromEntries(findStateDict(obj)) : obj;
    torch.save(data, output);
    const n = Object.values(data as object).filter((t) => t instanceof Tensor).length;
    process.stderr.write(`wrote ${output}${n ? ` (${n} tensors)` : ''}\n`);
  });
  return 0;
}

export function convertCommand(swav: Command): void {
  subcommand(swav, 'convert', 'converts between .pth / .pth.tar (zip or legacy) and .safetensors, by extension')
    .argument('<in>', 'the file to read')
    .argument('<out>', 'the file to write')
    .addHelpText('after', examples('swav convert swav_800ep_pretrain.pth.tar swav.safetensors'))
    .action(action(convert));
}

function hubList(): number {
  const rows = MODELS.map((m) => [m.name, m.method, m.arch, String(m.epochs), String(m.batchSize), m.crops, m.top1.toFixed(1), m.url]);
  const head = ['name', 'method', 'arch', 'epochs', 'batch', 'crops', 'top-1', 'url'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r));
  console.log(
    `\naliases (torch.hub entry points): ${Object.entries(ALIASES)
      .map(([a, n]) => `${a} -> ${n}`)
      .join(', ')}`,
  );
  return 0;
}

async function hubDownload(name: string, o: { force?: boolean; sha256?: string }): Promise<number> {
  if (o.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(o.sha256))
    throw new UsageError(`hub download: --sha256 takes 64 hex digits, got '${o.sha256}'`);
  console.log(await downloadModel(name, { force: o.force, sha256: o.sha256, onProgress: progressBar(process.stderr) }));
  return 0;
}

export function hubCommand(swav: Command): void {
  const hub = subcommand(swav, 'hub', 'the published checkpoints (the model zoo)');
  subcommand(hub, 'list', 'the published checkpoints, their recipes and top-1').action(action(hubList));
  subcommand(
    hub,
    'download',
    'downloads a checkpoint into the cache ($SWAV_HOME, else $XDG_CACHE_HOME/swav, else ~/.cache/swav), ' +
      'records its SHA-256 beside it, and prints its path',
  )
    .argument('<name>', 'a name or alias of swav hub list')
    .option('--force', 'download again even when cached')
    .option('--sha256 <hex>', "the file's known SHA-256: another one is refused and the download deleted")
    .addHelpText('after', examples('swav hub download swav_800ep', 'swav hub download swav_800ep --sha256 <64 hex digits>'))
    .action(action(hubDownload));
}
