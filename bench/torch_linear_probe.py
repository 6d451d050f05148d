"""The PyTorch peer of `swav bench probe`: eval_linear.py's head (RegLog: Linear, weight N(0, 0.01), bias 0) trained on
cached features: SGD (lr 0.3, momentum 0.9, weight decay 1e-6), CosineAnnealingLR per epoch, batches of a new random
order each epoch (index_select of the cached rows, the fastest plain-PyTorch way; a DataLoader would be slower),
top-1 / top-5 on the validation features after every epoch.

usage: /usr/bin/python3 bench/torch_linear_probe.py [--n 60000] [--val 10000] [--dim 512] [--classes 10] [--epochs 100]
                                                    [--batch 256] [--threads 2]
stdout: one JSON line {"seconds", "best_top1", ...}; seconds is the training and validation only."""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=60000)
p.add_argument("--val", type=int, default=10000)
p.add_argument("--dim", type=int, default=512)
p.add_argument("--classes", type=int, default=10)
p.add_argument("--epochs", type=int, default=100)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
centers = torch.randn(a.classes, a.dim)
ytr, yva = torch.randint(0, a.classes, (a.n,)), torch.randint(0, a.classes, (a.val,))
xtr, xva = centers[ytr] + 4 * torch.randn(a.n, a.dim), centers[yva] + 4 * torch.randn(a.val, a.dim)

t0 = time.perf_counter()
torch.manual_seed(31)
head = nn.Linear(a.dim, a.classes)
head.weight.data.normal_(mean=0.0, std=0.01)
head.bias.data.zero_()
opt = torch.optim.SGD(head.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-6)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs, eta_min=0)
g = torch.Generator().manual_seed(31)
best = (0.0, 0.0)
for epoch in range(a.epochs):
    order = torch.randperm(a.n, generator=g)
    for s in range(0, a.n, a.batch):
        idx = order[s:s + a.batch]
        loss = F.cross_entropy(head(xtr.index_select(0, idx)), ytr.index_select(0, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
    sched.step()
    with torch.no_grad():
        hits = head(xva).topk(5, 1).indices.eq(yva.unsqueeze(1))
        top1, top5 = float(hits[:, :1].sum()) / a.val, float(hits.sum()) / a.val
    if top1 > best[0]:
        best = (top1, top5)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": round(seconds, 3), "best_top1": best[0], "best_top5": best[1], "n": a.n, "dim": a.dim,
                  "epochs": a.epochs, "batch": a.batch, "torch": torch.__version__}))
