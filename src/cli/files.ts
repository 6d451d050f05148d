// `swav convert IN OUT` and `swav hub list | download NAME`.
import { torch } from '../index.js';
import { MODELS, ALIASES, downloadModel, findStateDict } from '../hub/index.js';
import { fileKind } from '../torch/io/index.js';
import { Flags, UsageError } from './args.js';
import { progressBar } from './progress.js';
import { Tensor } from '../torch/tensor.js';

/** Converts between .pth / .pth.tar (zip or legacy) and .safetensors, by extension. */
export function convert(f: Flags): void {
  f.done();
  const [input, output] = f.parsed.positionals;
  if (!input || !output || f.parsed.positionals.length !== 2) throw new UsageError('convert: usage: swav convert IN OUT');
  if (fileKind(input) === 'npy' || fileKind(output) === 'npy') throw new UsageError('convert: converts .pth/.pth.tar and .safetensors files');
  torch.tidy(() => {
    const obj = torch.load(input);
    // safetensors holds a flat dict of tensors: the state dict of a training checkpoint
    const data = fileKind(output) === 'safetensors' ? Object.fromEntries(findStateDict(obj)) : obj;
    torch.save(data, output);
    const n = Object.values(data as object).filter((t) => t instanceof Tensor).length;
    process.stderr.write(`wrote ${output}${n ? ` (${n} tensors)` : ''}\n`);
  });
}

export async function hubCommand(argv: string[], flags: (argv: string[]) => Flags): Promise<void> {
  const [what, ...rest] = argv;
  const f = flags(rest);
  if (what === 'list') {
    f.done();
    const rows = MODELS.map((m) => [m.name, m.method, m.arch, String(m.epochs), String(m.batchSize), m.crops, m.top1.toFixed(1), m.url]);
    const head = ['name', 'method', 'arch', 'epochs', 'batch', 'crops', 'top-1', 'url'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
    console.log(fmt(head));
    for (const r of rows) console.log(fmt(r));
    console.log(`\naliases (torch.hub entry points): ${Object.entries(ALIASES).map(([a, n]) => `${a} -> ${n}`).join(', ')}`);
    return;
  }
  if (what === 'download') {
    const force = f.bool('force');
    f.done();
    const [name] = f.parsed.positionals;
    if (!name) throw new UsageError('hub download: which model? (`swav hub list` shows them)');
    const path = await downloadModel(name, { force, onProgress: progressBar(process.stderr) });
    console.log(path);
    return;
  }
  throw new UsageError(`hub: unknown subcommand '${what ?? ''}' (list, download)`);
}
