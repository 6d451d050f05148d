"""The PyTorch peer's SwAV step (../shared/peer/torch_swav_step.py, run as written up to its timing loop) under
torch.profiler with record_shapes: one JSON line with, per operator and input shapes, calls and self CPU time per
step (ms), the inputs' dtypes, and the step's time unprofiled. bench/profile.mjs matches it with
`swav bench step --profile N --profile-detail`.
usage: python3 bench/torch_step_profile.py [--profile 2] [the peer's options: --batch 8 --steps 2 --warmup 2 --amp bf16
       --channels-last 1 --crops 2x224,6x96 --arch resnet50]
"""
import json
import os
import sys
import time

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peer", "torch_swav_step.py")
MARK = "\nfor _ in range(a.warmup):"

argv = sys.argv[1:]
profile_steps = 2
if "--profile" in argv:
    i = argv.index("--profile")
    profile_steps = int(argv[i + 1])
    del argv[i:i + 2]

# The peer's model, optimizer, crops and step() exactly as it defines them: its source up to the timing loop.
src = open(PEER).read()
cut = src.find(MARK)
if cut < 0:
    sys.exit(f"torch_step_profile.py: {PEER} no longer has its timing loop ({MARK.strip()!r}); update this script")
ns = {"__name__": "torch_swav_step", "__file__": PEER}
sys.argv = [PEER] + argv
exec(compile(src[:cut], PEER, "exec"), ns)
a, step, torch = ns["a"], ns["step"], ns["torch"]

for _ in range(a.warmup):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
dt = (time.perf_counter() - t0) / max(a.steps, 1)

from torch._C._autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    for _ in range(profile_steps):
        step()

# dtypes per event, where this torch's profiler keeps them (FunctionEvent does not; its kineto events may)
dtypes_of = {}
try:
    for k in prof.profiler.kineto_results.events():
        dtypes_of[k.correlation_id()] = list(k.dtypes())
except Exception:  # noqa: BLE001 - an older or newer profiler: no dtypes
    pass

SHORT = {"float": "f32", "c10::BFloat16": "bf16", "c10::Half": "f16", "double": "f64", "long int": "i64", "int": "i32",
         "unsigned char": "u8", "signed char": "i8", "bool": "bool"}
stats = {}
total = 0.0
for e in prof.events():
    if e.device_type != DeviceType.CPU:
        continue
    shapes = [list(s) for s in (e.input_shapes or [])]
    dtypes = [SHORT.get(d, d) for d in dtypes_of.get(e.id, [])]
    key = (e.name, json.dumps(shapes), json.dumps(dtypes))
    s = stats.setdefault(key, {"op": e.name, "shapes": shapes, "dtypes": dtypes, "calls": 0, "self_us": 0.0})
    s["calls"] += 1
    s["self_us"] += e.self_cpu_time_total
    total += e.self_cpu_time_total

ops = sorted(stats.values(), key=lambda s: -s["self_us"])
out = [{"op": s["op"], "calls": s["calls"] / profile_steps, "ms": round(s["self_us"] / 1000 / profile_steps, 4),
        "share": round(s["self_us"] / total, 5) if total else 0, "shapes": s["shapes"], "dtypes": s["dtypes"]} for s in ops]
res = dict(arch=a.arch, batch=a.batch, crops=a.crops, amp=a.amp, channels_last=a.channels_last, torch=torch.__version__,
           threads=torch.get_num_threads(), step_s=round(dt, 5), samples_per_s=round(a.batch / dt, 3),
           profile_steps=profile_steps, profiled_step_s=round(total / 1e6 / profile_steps, 4), profile=out)
print(json.dumps(res))
sys.stdout.flush()
