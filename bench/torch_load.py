"""Peer for `swav bench load`: torch.load of a checkpoint, timed in-process (interpreter start excluded).
usage: python3 bench/torch_load.py --file F [--rounds 1]
       python3 bench/torch_load.py --make F [--format legacy|zip]   (a SwAV RN50-w2 state dict, ~380 MB)"""
import argparse, json, os, sys, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--file"); p.add_argument("--make"); p.add_argument("--format", default="legacy")
a = p.parse_args()
if a.make:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "golden"))
    from swav_reference import swav_resnet
    m = swav_resnet(widen=2, normalize=True, hidden_mlp=8192, output_dim=128, nmb_prototypes=3000)
    sd = {"module." + k: v for k, v in m.state_dict().items()}
    torch.save(sd, a.make, _use_new_zipfile_serialization=a.format == "zip")
    print(json.dumps({"file": a.make, "bytes": os.path.getsize(a.make)}))
    sys.exit(0)
t = time.perf_counter()
sd = torch.load(a.file, map_location="cpu")
dt = time.perf_counter() - t
print(json.dumps({"load_s": round(dt, 4), "tensors": len(sd), "bytes": os.path.getsize(a.file)}))
