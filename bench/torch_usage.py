"""Page faults and CPU time per iteration of the PyTorch peers, measured in-process like `swav bench step`'s
faults_per_step / cpu_s_per_step (model building and warm-up excluded).
usage: python3 bench/torch_usage.py step [--amp bf16] [--channels-last 1] [--iterations 6]
       python3 bench/torch_usage.py infer [--amp fp32] [--iterations 5]"""
import argparse, json, os, resource, runpy, sys
import torch

p = argparse.ArgumentParser()
p.add_argument("peer", choices=["step", "infer"]); p.add_argument("--amp", default=None)
p.add_argument("--channels-last", default="1"); p.add_argument("--iterations", type=int, default=None)
a = p.parse_args()
a.amp = a.amp or ("bf16" if a.peer == "step" else "fp32")
peers = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peer")
if a.peer == "step":  # the peer's own step(), after its warm-up and one timed step
    sys.argv = ["peer", "--batch", "8", "--steps", "1", "--warmup", "2", "--amp", a.amp, "--channels-last", a.channels_last]
    iteration = runpy.run_path(os.path.join(peers, "torch_swav_step.py"), run_name="peer")["step"]
else:  # one more forward pass of the peer's model on its batch, in inference mode
    sys.argv = ["peer", "--batch", "16", "--steps", "1", "--amp", a.amp]
    g = runpy.run_path(os.path.join(peers, "torch_infer.py"), run_name="peer")
    amp = {"bf16": torch.bfloat16}.get(a.amp)
    def iteration():
        with torch.inference_mode(), torch.autocast(device_type="cpu", dtype=amp, enabled=amp is not None):
            g["m"](g["x"])
n = a.iterations or (6 if a.peer == "step" else 5)
u0 = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(n):
    iteration()
u1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(peer=a.peer, amp=a.amp, faults_per_iteration=round((u1.ru_minflt - u0.ru_minflt) / n),
                      cpu_s_per_iteration=round((u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime) / n, 3),
                      sys_s_per_iteration=round((u1.ru_stime - u0.ru_stime) / n, 3))))
