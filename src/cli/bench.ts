// `swav bench step`: one full SwAV training step on synthetic data, with the flags of the PyTorch peer
// (../shared/peer/torch_swav_step.py) so that the two run side by side.
import { torch, models, optim } from '../index.js';
import { normalizePrototypes, swavLoss } from '../methods/swav.js';
import { Flags, UsageError, parseCrops } from './args.js';
import type { Architecture } from '../models/resnet.js';
import { architectures } from '../models/resnet.js';

export type Amp = 'fp32' | 'bf16' | 'fp16';
const autocastDtype = { fp32: null, bf16: 'bfloat16', fp16: 'float16' } as const;

/** Runs fn under autocast for `amp` on `device` (plain fp32 for 'fp32'). */
export function withAmp<T>(amp: Amp, device: string, fn: () => T): T {
  const dtype = autocastDtype[amp];
  if (dtype === null) return fn();
  return torch.autocast({ deviceType: device.startsWith('cuda') ? 'cuda' : 'cpu', dtype }, fn);
}

function benchStep(f: Flags): Record<string, unknown> {
  const arch = f.choice('arch', Object.keys(architectures) as Architecture[], 'resnet50');
  const batch = f.int('batch', 64);
  const steps = f.int('steps', 20);
  const warmup = f.int('warmup', 5);
  const amp = f.choice<Amp>('amp', ['fp32', 'bf16', 'fp16'], 'bf16');
  const channelsLast = f.bool('channels-last', true);
  const spec = parseCrops(f.string('crops', '2x224,6x96'));
  const device = f.string('device', torch.cuda.isAvailable() ? 'cuda' : 'cpu');
  const stem = f.choice('stem', ['imagenet', 'small'] as const, 'imagenet');
  const width = f.optional('width');
  const inChannels = f.int('in-channels', 3);
  const hiddenMlp = f.int('hidden-mlp', 2048);
  const nmbPrototypes = f.int('prototypes', 3000);
  f.optional('json');
  f.done();
  if (batch < 2) throw new UsageError('bench step: --batch must be at least 2 (BatchNorm needs it)');

  const model = models.architectures[arch]({ numClasses: 0, normalize: true, hiddenMlp, outputDim: 128, nmbPrototypes, stem,
    width: width === undefined ? undefined : Number(width), inChannels });
  model.to({ device, memoryFormat: channelsLast ? 'channelsLast' : undefined });
  const opt = new optim.LARC(new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-6 }),
    { trustCoefficient: 0.001, clip: false });
  const crops = spec.flatMap(({ n, size }) => Array.from({ length: n }, () => torch.keep(
    torch.tidy(() => torch.randn([batch, inChannels, size, size], { device }).contiguous(channelsLast ? 'channelsLast' : 'contiguous')))));
  const nmbCrops = spec.map((s) => s.n);

  const step = () => torch.tidy(() => {
    normalizePrototypes(model);
    const { output } = withAmp(amp, device, () => model.forwardCrops(crops));
    const loss = swavLoss(output as torch.Tensor, { batchSize: batch, nmbCrops });
    model.zeroGrad();
    loss.backward();
    opt.step();
    return loss.item(); // also synchronizes a GPU
  });
  for (let i = 0; i < warmup; i++) step();
  const t0 = performance.now();
  let loss = 0;
  for (let i = 0; i < steps; i++) loss = step();
  const dt = (performance.now() - t0) / 1000 / steps;
  return {
    arch, batch, crops: spec.map((s) => `${s.n}x${s.size}`).join(','), amp, channels_last: channelsLast ? 1 : 0,
    device, threads: torch.getNumThreads(), libtorch: torch.version,
    step_s: Number(dt.toFixed(5)), samples_per_s: Number((batch / dt).toFixed(3)), loss,
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** torch.load of a checkpoint, timed in-process (the peer is bench/torch_load.py). */
function benchLoad(f: Flags): Record<string, unknown> {
  const file = f.string('file');
  f.optional('json');
  f.done();
  const t0 = performance.now();
  const obj = torch.load(file);
  const dt = (performance.now() - t0) / 1000;
  const tensors = Object.values(obj as object).filter((t) => t instanceof torch.Tensor);
  tensors.forEach((t) => t.dispose());
  return { load_s: Number(dt.toFixed(4)), tensors: tensors.length, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024) };
}

const BENCHES: Record<string, (f: Flags) => Record<string, unknown>> = { step: benchStep, load: benchLoad };

export function bench(argv: string[], parsedFlags: (argv: string[]) => Flags): void {
  const [what, ...rest] = argv;
  const run = BENCHES[what];
  if (!run) throw new UsageError(`bench: unknown benchmark '${what ?? ''}' (${Object.keys(BENCHES).join(', ')})`);
  const f = parsedFlags(rest);
  const res = run(f);
  if (f.bool('json')) console.log(JSON.stringify(res));
  else for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(16)} ${v}`);
}
