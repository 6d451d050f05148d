// What a benchmark ran on: the CPU (model, family and model numbers, the flags that decide the kernels: AVX-512
// BF16, AMX), cores, libtorch, oneDNN and ATen's CPU capability, and which oneDNN implementations a bf16 and an fp32
// convolution pick on this machine (ONEDNN_VERBOSE, in a child process). `swav bench info` prints it; every
// bench record carries it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as torch from '../torch/index.js';
import { native } from '../torch/native.js';

/** The flags that change which kernels run (BF16 and AMX above all). */
const FLAGS = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8'];

export interface MachineInfo {
  cpu: string;
  vendor: string;
  family: number | null;
  model: number | null;
  cores: number;
  flags: string[];
  libtorch: string;
  onednn: string | null;
  atenCapability: string | null;
  /** oneDNN's ISA line, and the implementations its convolutions chose (bf16 and fp32, forward and backward). */
  onednnIsa: string | null;
  onednnKernels: string[];
}

function cpuinfo(): Record<string, string> {
  try {
    const first = readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0];
    return Object.fromEntries(
      first
        .split('\n')
        .map((l) => l.split(/\s*:\s*/, 2))
        .filter((kv) => kv.length === 2),
    );
  } catch {
    return {};
  }
}

/** A bf16 and an fp32 convolution, forward and backward, in a child with ONEDNN_VERBOSE on: the kernels named. */
function onednnKernels(): { isa: string | null; kernels: string[] } {
  const index = fileURLToPath(new URL('../index.js', import.meta.url));
  const script = `import(${JSON.stringify(index)}).then(({ torch }) => {
    for (const dtype of ['float32', 'bfloat16']) {
      const x = torch.randn([4, 32, 28, 28]).to({ dtype }).contiguous('channelsLast').requiresGrad_(true);
      const w = torch.randn([32, 32, 3, 3]).to({ dtype }).contiguous('channelsLast').requiresGrad_(true);
      torch.conv2d(x, w, null, { padding: 1 }).sum().backward();
    }
  })`;
  try {
    const out = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, ONEDNN_VERBOSE: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const isa = /onednn_verbose,info,cpu,isa:(.*)/.exec(out)?.[1] ?? null;
    const kernels = [
      ...new Set(
        out
          .split('\n')
          .filter((l) => l.startsWith('onednn_verbose,exec,cpu,convolution,'))
          .map((l) => {
            const f = l.split(',');
            return `${f[4]} ${f[5]} ${/src_(\w+)/.exec(f[6] ?? '')?.[1] ?? ''}`.trim();
          }),
      ),
    ];
    return { isa, kernels };
  } catch {
    return { isa: null, kernels: [] };
  }
}

export function machineInfo(o: { kernels?: boolean } = {}): MachineInfo {
  const c = cpuinfo();
  const flags = new Set((c.flags ?? '').split(/\s+/));
  const config = native.configShow();
  const { isa, kernels } = o.kernels === false ? { isa: null, kernels: [] } : onednnKernels();
  return {
    cpu: c['model name'] ?? 'unknown',
    vendor: c.vendor_id ?? 'unknown',
    family: c['cpu family'] ? Number(c['cpu family']) : null,
    model: c.model ? Number(c.model) : null,
    cores: availableParallelism(),
    flags: FLAGS.filter((f) => flags.has(f)),
    libtorch: torch.version,
    onednn: /MKL-DNN (v[\d.]+)/.exec(config)?.[1] ?? null,
    atenCapability: /CPU capability usage: (\S+)/.exec(config)?.[1] ?? null,
    onednnIsa: isa,
    onednnKernels: kernels,
  };
}

/** One line naming the machine, for bench records: "2 x AMD EPYC (family 25 model 17; avx512_bf16), libtorch 1.13.0". */
export function machineLine(m: MachineInfo): string {
  return `${m.cores} x ${m.cpu} (family ${m.family} model ${m.model}; ${m.flags.join(' ') || 'no AVX2'}), libtorch ${m.libtorch}, oneDNN ${m.onednn ?? '?'}`;
}
