// `swav bench step`: one full SwAV training step on synthetic data, with the flags of the PyTorch peer
// (../shared/peer/torch_swav_step.py) so that the two run side by side.
import { torch, models, optim } from '../index.js';
import { linearProbe } from '../eval/linear.js';
import { normalizePrototypes, swavLoss } from '../methods/swav.js';
import { Flags, UsageError, parseCrops } from './args.js';
import type { Architecture } from '../models/resnet.js';
import { architectures } from '../models/resnet.js';
import { FrozenTrunk } from '../models/inference.js';
import { listImages } from '../data/image.js';
import { DecodePool } from '../data/workers.js';
import { imageTensor, multiCropBatches } from '../data/loader.js';
import { REFERENCE_MULTICROP } from '../data/multicrop.js';
import { AUTOCAST_DTYPE, type Amp } from '../methods/common.js';
import { MemoryBank, clusterMemory, kmeansRule } from '../methods/deepclusterv2.js';


/** Runs fn under autocast for `amp` on `device` (plain fp32 for 'fp32'). */
function withAmp<T>(amp: Amp, device: string, fn: () => T): T {
  const dtype = AUTOCAST_DTYPE[amp];
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
  const stemStride = f.int('stem-stride', 1);
  const inChannels = f.int('in-channels', 3);
  const hiddenMlp = f.int('hidden-mlp', 2048);
  const nmbPrototypes = f.int('prototypes', 3000);
  const profileSteps = f.int('profile', 0);
  f.optional('json');
  f.done();
  if (batch < 2) throw new UsageError('bench step: --batch must be at least 2 (BatchNorm needs it)');

  const model = models.architectures[arch]({ numClasses: 0, normalize: true, hiddenMlp, outputDim: 128, nmbPrototypes, stem, stemStride,
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
  const usage0 = process.resourceUsage();
  const t0 = performance.now();
  let loss = 0;
  for (let i = 0; i < steps; i++) loss = step();
  const dt = (performance.now() - t0) / 1000 / steps;
  const usage1 = process.resourceUsage();
  // where the time goes: self time per operator over `profileSteps` more steps, the 15 largest
  const profile = profileSteps > 0 ? (() => {
    const { ops } = torch.profile(() => { for (let i = 0; i < profileSteps; i++) step(); });
    const total = ops.reduce((a, o) => a + o.selfUs, 0);
    return ops.slice(0, 15).map((o) => ({ op: o.name, calls: o.count / profileSteps, ms: Number((o.selfUs / 1000 / profileSteps).toFixed(2)),
      share: Number((o.selfUs / total).toFixed(3)) }));
  })() : undefined;
  return {
    arch, batch, crops: spec.map((s) => `${s.n}x${s.size}`).join(','), amp, channels_last: channelsLast ? 1 : 0,
    device, threads: torch.getNumThreads(), libtorch: torch.version,
    step_s: Number(dt.toFixed(5)), samples_per_s: Number((batch / dt).toFixed(3)), loss,
    peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    faults_per_step: Math.round((usage1.minorPageFault - usage0.minorPageFault) / steps),
    cpu_s_per_step: Number(((usage1.userCPUTime + usage1.systemCPUTime - usage0.userCPUTime - usage0.systemCPUTime) / 1e6 / steps).toFixed(3)),
    sys_s_per_step: Number(((usage1.systemCPUTime - usage0.systemCPUTime) / 1e6 / steps).toFixed(3)), profile,
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

/** Feature extraction throughput (the peer is ../shared/peer/torch_infer.py): the inference trunk on random images. */
function benchExtract(f: Flags): Record<string, unknown> {
  const arch = f.choice('arch', Object.keys(architectures) as Architecture[], 'resnet50');
  const batch = f.int('batch', 256);
  const steps = f.int('steps', 20);
  const size = f.int('size', 224);
  const amp = f.choice('amp', ['fp32', 'bf16'] as const, 'bf16');
  const device = f.string('device', torch.cuda.isAvailable() ? 'cuda' : 'cpu');
  f.optional('json');
  f.done();
  const model = models.architectures[arch]({ numClasses: 0 }).eval();
  const trunk = new FrozenTrunk(model, { dtype: amp === 'bf16' ? 'bfloat16' : 'float32', device });
  model.dispose();
  const x = torch.randn([batch, 3, size, size]).contiguous('channelsLast');
  for (let i = 0; i < 3; i++) torch.tidy(() => trunk.forward(x).cpu());
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) torch.tidy(() => trunk.forward(x).cpu());
  const dt = (performance.now() - t0) / 1000 / steps;
  trunk.dispose();
  x.dispose();
  return { arch, batch, size, amp, images_per_s: Number((batch / dt).toFixed(3)), libtorch: torch.version, peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024) };
}

/**
 * Multi-crop data throughput per core (the peer is ../shared/peer/torch_multicrop_data.py): JPEG files decoded by
 * one worker thread, cropped, colored and normalized on the main thread with one libtorch thread; images per
 * CPU-second of the whole process.
 */
async function benchData(f: Flags): Promise<Record<string, unknown>> {
  const dir = f.string('dir');
  const spec = parseCrops(f.string('crops', '2x224,6x96'));
  const minScale = f.string('min-scale', '0.14,0.05').split(',').map(Number);
  const maxScale = f.string('max-scale', '1,0.14').split(',').map(Number);
  const rounds = f.int('rounds', 2);
  const batch = f.int('batch', 16);
  f.optional('json');
  f.done();
  const files = listImages(dir).filter((p) => p.endsWith('.jpg'));
  if (!files.length) throw new UsageError(`bench data: no .jpg files in ${dir}`);
  torch.setNumThreads(1);
  const crops = { ...REFERENCE_MULTICROP, nmbCrops: spec.map((s) => s.n), sizeCrops: spec.map((s) => s.size), minScaleCrops: minScale, maxScaleCrops: maxScale };
  const pool = new DecodePool(1);
  let best = 0;
  let bestWall = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < files.length; i += batch) {
        const samples = await Promise.all(files.slice(i, i + batch).map((file, k) => pool.decode(file, i + k, 0, r, crops)));
        torch.tidy(() => { multiCropBatches(samples.map((s) => imageTensor(s.image)), samples.map((s) => s.params), crops); }); // freed now, as the trainer does
      }
      const cpu = process.cpuUsage(cpu0);
      best = Math.max(best, files.length / ((cpu.user + cpu.system) / 1e6));
      bestWall = Math.max(bestWall, files.length / ((performance.now() - t0) / 1000));
    }
  } finally {
    pool.close();
  }
  return { images_per_s: Number(best.toFixed(1)), wall_images_per_s: Number(bestWall.toFixed(1)), crops: spec.map((s) => `${s.n}x${s.size}`).join(','), images: files.length, cores: 1 };
}

/**
 * DeepCluster-v2's clustering at the start of an epoch (the peer is bench/torch_cluster.py, main_deepclusterv2.py's
 * cluster_memory): spherical k-means of every head on a random normalized bank (banks x n x dim), centroids into the
 * heads, the assignments table.
 */
function benchCluster(f: Flags): Record<string, unknown> {
  const n = f.int('n', 60000);
  const dim = f.int('dim', 128);
  const heads = f.int('heads', 3);
  const k = f.int('k', 3000);
  const banks = f.int('banks', 2);
  const iters = f.int('iters', 10);
  const seed = f.int('seed', 31);
  const threads = f.int('threads', 2);
  f.optional('json');
  f.done();
  torch.setNumThreads(threads);
  torch.manualSeed(seed);
  const bank = new MemoryBank(torch.keep(torch.tidy(() => torch.normalize(torch.randn([banks, n, dim]), 2, 2))), torch.keep(torch.arange(n, undefined, 1, { dtype: 'int64' })));
  const prototypes = Array.from({ length: heads }, () => torch.keep(torch.zeros([k, dim])));
  const t0 = performance.now();
  const table = clusterMemory(bank, prototypes, kmeansRule(iters), n);
  const seconds = (performance.now() - t0) / 1000;
  const unlabelled = torch.tidy(() => table.lt(0).sum().item());
  if (unlabelled !== 0) throw new Error(`bench cluster: ${unlabelled} samples without a label`);
  table.dispose();
  bank.dispose();
  prototypes.forEach((p) => p.dispose());
  return { seconds: Number(seconds.toFixed(4)), n, k, heads, dim, banks, iters, threads, libtorch: torch.version };
}

/**
 * The linear probe on cached features (the peer is bench/torch_linear_probe.py): evaluation.linearProbe with
 * eval_linear.py's defaults on random features of a few classes, shuffled every epoch.
 */
async function benchProbe(f: Flags): Promise<Record<string, unknown>> {
  const n = f.int('n', 60000);
  const val = f.int('val', 10000);
  const dim = f.int('dim', 512);
  const classes = f.int('classes', 10);
  const epochs = f.int('epochs', 100);
  const batch = f.int('batch', 256);
  const threads = f.int('threads', 2);
  f.optional('json');
  f.done();
  torch.setNumThreads(threads);
  torch.manualSeed(0);
  const make = (rows: number, centers: torch.Tensor) => torch.tidy(() => {
    const y = torch.randint(0, classes, [rows], { dtype: 'int64' });
    return { x: torch.keep(centers.indexSelect(0, y).add(torch.randn([rows, dim]).mul(4))), y: torch.keep(y) };
  });
  const centers = torch.randn([classes, dim]);
  const tr = make(n, centers);
  const va = make(val, centers);
  const t0 = performance.now();
  const r = await linearProbe(tr.x, tr.y, va.x, va.y, { epochs, batchSize: batch, lr: 0.3, momentum: 0.9, weightDecay: 1e-6, seed: 31 });
  const seconds = (performance.now() - t0) / 1000;
  r.classifier.dispose();
  [tr.x, tr.y, va.x, va.y, centers].forEach((t) => t.dispose());
  return { seconds: Number(seconds.toFixed(3)), best_top1: r.bestTop1, best_top5: r.bestTop5, n, dim, epochs, batch, libtorch: torch.version };
}

const BENCHES: Record<string, (f: Flags) => Record<string, unknown> | Promise<Record<string, unknown>>> = {
  step: benchStep, load: benchLoad, extract: benchExtract, data: benchData, cluster: benchCluster, probe: benchProbe,
};

export async function bench(argv: string[], parsedFlags: (argv: string[]) => Flags): Promise<void> {
  const [what, ...rest] = argv;
  const run = BENCHES[what];
  if (!run) throw new UsageError(`bench: unknown benchmark '${what ?? ''}' (${Object.keys(BENCHES).join(', ')})`);
  const f = parsedFlags(rest);
  const res = await run(f);
  if (f.bool('json')) console.log(JSON.stringify(res));
  else for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(16)} ${v}`);
}
