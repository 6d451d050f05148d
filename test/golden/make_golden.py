"""Golden files for the differential tests, written by PyTorch (Debian's python3-torch).

usage: python3 test/golden/make_golden.py [--small] [--models DIR] [--deepcluster DIR]
  --small       ops, BatchNorm statistics, SGD/LARC steps, schedules, init checksums -> test/golden/data/*.json
  --models DIR  resnet18 / resnet50 / resnet50w2 weights, inputs, outputs and gradients -> DIR (large; the
                test harness writes them to test/.cache/golden when missing)
  --deepcluster DIR  DeepCluster-v2 k-means, loss, SeLa-v2 labels and 3 training iterations of each -> DIR
Tensors in the JSON files: {"shape", "dtype", "data": base64 of little-endian bytes}.
"""
import argparse, base64, json, math, os, sys
from collections import OrderedDict
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from swav_reference import swav_resnet  # noqa: E402  (SwAV's widened ResNet-50, rebuilt from the paper's code layout)

DT = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.int32: "int32",
      torch.bool: "bool", torch.uint8: "uint8", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def enc(t):
    t = t.detach().contiguous()
    dtype = DT[t.dtype]
    raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
    return {"shape": list(t.shape), "dtype": dtype, "data": base64.b64encode(raw.numpy().tobytes()).decode()}


def write(name, obj):
    path = os.path.join(HERE, "data", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)
    print(f"wrote {path} ({os.path.getsize(path) // 1024} KiB)")


# ---------------------------------------------------------------- ops: forward and gradient of each wrapped op
def r(*shape):
    return torch.randn(*shape)


def pos(*shape):
    return torch.rand(*shape) + 0.5


def idx(high, *shape):
    return torch.randint(0, high, shape)


# name -> (inputs {name: tensor}, names of float inputs that take gradients, fn(**inputs) -> tensor or tuple)
def op_cases():
    C = {}
    def case(name, inputs, fn, grad=None):
        C[name] = (inputs, [k for k, v in inputs.items() if v.is_floating_point()] if grad is None else grad, fn)
    case("add", dict(a=r(3, 4), b=r(4)), lambda a, b: a.add(b, alpha=2))
    case("add_scalar", dict(a=r(3, 4)), lambda a: a + 1.5)
    case("sub", dict(a=r(3, 4), b=r(3, 1)), lambda a, b: a.sub(b))
    case("mul", dict(a=r(3, 4), b=r(3, 4)), lambda a, b: a * b)
    case("mul_scalar", dict(a=r(3, 4)), lambda a: a * 0.5)
    case("div", dict(a=r(3, 4), b=pos(3, 4)), lambda a, b: a / b)
    case("div_scalar", dict(a=r(3, 4)), lambda a: a / 3.0)
    case("pow", dict(a=pos(3, 4)), lambda a: a.pow(2.5))
    case("pow_tensor", dict(a=pos(3, 4), b=r(3, 4)), lambda a, b: a.pow(b))
    case("maximum", dict(a=r(3, 4), b=r(3, 4)), lambda a, b: torch.maximum(a, b))
    case("minimum", dict(a=r(3, 4), b=r(3, 4)), lambda a, b: torch.minimum(a, b))
    for u in ["neg", "abs", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "square"]:
        case(u, dict(a=r(3, 5)), lambda a, u=u: getattr(a, u)())
    for u in ["log", "log1p", "sqrt", "rsqrt", "reciprocal"]:
        case(u, dict(a=pos(3, 5)), lambda a, u=u: getattr(a, u)())
    case("clamp", dict(a=r(4, 5)), lambda a: a.clamp(-0.5, 0.7))
    case("clamp_min", dict(a=r(4, 5)), lambda a: a.clamp_min(0.1))
    case("matmul", dict(a=r(2, 3, 4), b=r(4, 5)), lambda a, b: a.matmul(b))
    case("mm", dict(a=r(3, 4), b=r(4, 5)), lambda a, b: a.mm(b))
    case("bmm", dict(a=r(2, 3, 4), b=r(2, 4, 5)), lambda a, b: a.bmm(b))
    case("softmax", dict(a=r(3, 7)), lambda a: a.softmax(1))
    case("log_softmax", dict(a=r(3, 7)), lambda a: a.log_softmax(-1))
    case("sum", dict(a=r(3, 4)), lambda a: a.sum())
    case("sum_dim", dict(a=r(3, 4, 5)), lambda a: a.sum([0, 2], keepdim=True))
    case("mean", dict(a=r(3, 4)), lambda a: a.mean())
    case("mean_dim", dict(a=r(3, 4, 5)), lambda a: a.mean(1))
    case("std", dict(a=r(3, 6)), lambda a: a.std(1))
    case("var", dict(a=r(3, 6)), lambda a: a.var())
    case("norm", dict(a=r(3, 6)), lambda a: a.norm())
    case("norm_dim", dict(a=r(3, 6)), lambda a: a.norm(2, 1, keepdim=True))
    case("logsumexp", dict(a=r(3, 6)), lambda a: a.logsumexp(1))
    case("cumsum", dict(a=r(3, 6)), lambda a: a.cumsum(1))
    case("prod", dict(a=pos(3, 4)), lambda a: a.prod(1))
    case("max", dict(a=r(3, 6)), lambda a: a.max())
    case("max_dim", dict(a=r(3, 6)), lambda a: tuple(a.max(1)))
    case("min_dim", dict(a=r(3, 6)), lambda a: tuple(a.min(0, keepdim=True)))
    case("amax", dict(a=r(3, 6)), lambda a: a.amax(1))
    case("argmax", dict(a=r(3, 6)), lambda a: a.argmax(1))
    case("argmin", dict(a=r(3, 6)), lambda a: a.argmin())
    case("topk", dict(a=r(4, 9)), lambda a: tuple(a.topk(3, dim=1)))
    case("sort", dict(a=r(4, 9)), lambda a: tuple(a.sort(1, descending=True)))
    case("reshape", dict(a=r(3, 4)), lambda a: a.reshape(2, 6))
    case("view", dict(a=r(3, 4)), lambda a: a.view(-1))
    case("flatten", dict(a=r(2, 3, 4)), lambda a: a.flatten(1))
    case("squeeze", dict(a=r(3, 1, 4)), lambda a: a.squeeze(1))
    case("unsqueeze", dict(a=r(3, 4)), lambda a: a.unsqueeze(0))
    case("permute", dict(a=r(2, 3, 4)), lambda a: a.permute(2, 0, 1))
    case("transpose", dict(a=r(2, 3, 4)), lambda a: a.transpose(0, 2))
    case("t", dict(a=r(3, 4)), lambda a: a.t())
    case("expand", dict(a=r(3, 1)), lambda a: a.expand(3, 4))
    case("repeat", dict(a=r(2, 3)), lambda a: a.repeat(2, 2))
    case("flip", dict(a=r(2, 3)), lambda a: a.flip(1))
    case("narrow", dict(a=r(5, 3)), lambda a: a.narrow(0, 1, 3))
    case("select", dict(a=r(5, 3)), lambda a: a.select(1, 2))
    case("slice", dict(a=r(7, 3)), lambda a: a[1:6:2])
    case("index_basic", dict(a=r(4, 5, 6)), lambda a: a[1, :, None, 2:5])
    case("index_ellipsis", dict(a=r(4, 5, 6)), lambda a: a[..., 0])
    case("index_tensor", dict(a=r(6, 5), i=idx(6, 4)), lambda a, i: a[i, 1:3])
    case("chunk", dict(a=r(6, 4)), lambda a: tuple(a.chunk(3, 0)))
    case("split", dict(a=r(6, 4)), lambda a: tuple(a.split([1, 3], 1)))
    case("unbind", dict(a=r(3, 4)), lambda a: tuple(a.unbind(0)))
    case("index_select", dict(a=r(6, 4), i=idx(6, 5)), lambda a, i: a.index_select(0, i))
    case("gather", dict(a=r(4, 6), i=idx(6, 4, 3)), lambda a, i: a.gather(1, i))
    case("scatter_add", dict(a=r(4, 6), i=idx(6, 4, 3), s=r(4, 3)), lambda a, i, s: a.scatter_add(1, i, s))
    case("where", dict(c=torch.rand(3, 4) > 0.5, a=r(3, 4), b=r(3, 4)), lambda c, a, b: torch.where(c, a, b))
    case("masked_fill", dict(a=r(3, 4), m=torch.rand(3, 4) > 0.5), lambda a, m: a.masked_fill(m, -2.0))
    case("eq", dict(a=idx(3, 4, 4).float(), b=idx(3, 4, 4).float()), lambda a, b: a == b, grad=[])
    case("gt_scalar", dict(a=r(4, 4)), lambda a: a > 0.2, grad=[])
    case("cat", dict(a=r(2, 3), b=r(4, 3)), lambda a, b: torch.cat([a, b], 0))
    case("stack", dict(a=r(2, 3), b=r(2, 3)), lambda a, b: torch.stack([a, b], 1))
    case("einsum", dict(a=r(2, 3), b=r(3, 4)), lambda a, b: torch.einsum("ij,jk->ik", a, b))
    case("conv2d", dict(x=r(2, 3, 9, 9), w=r(4, 3, 3, 3), b=r(4)), lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1))
    case("conv2d_groups", dict(x=r(2, 4, 7, 7), w=r(6, 2, 3, 3)), lambda x, w: F.conv2d(x, w, None, padding=[1, 2], dilation=2, groups=2))
    case("linear", dict(x=r(5, 4), w=r(3, 4), b=r(3)), lambda x, w, b: F.linear(x, w, b))
    case("batch_norm_train", dict(x=r(4, 3, 5, 5), rm=r(3), rv=pos(3), w=r(3), b=r(3)),
         lambda x, rm, rv, w, b: F.batch_norm(x, rm.clone(), rv.clone(), w, b, training=True, momentum=0.1, eps=1e-5), grad=["x", "w", "b"])
    case("batch_norm_eval", dict(x=r(4, 3, 5, 5), rm=r(3), rv=pos(3), w=r(3), b=r(3)),
         lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, training=False), grad=["x", "w", "b"])
    case("batch_norm_1d", dict(x=r(6, 5), rm=r(5), rv=pos(5), w=r(5), b=r(5)),
         lambda x, rm, rv, w, b: F.batch_norm(x, rm.clone(), rv.clone(), w, b, training=True), grad=["x", "w", "b"])
    case("max_pool2d", dict(x=r(2, 3, 9, 9)), lambda x: F.max_pool2d(x, 3, 2, 1))
    case("avg_pool2d", dict(x=r(2, 3, 8, 8)), lambda x: F.avg_pool2d(x, 2))
    case("adaptive_avg_pool2d", dict(x=r(2, 3, 7, 5)), lambda x: F.adaptive_avg_pool2d(x, (1, 1)))
    case("normalize", dict(x=r(5, 8)), lambda x: F.normalize(x, dim=1, p=2))
    case("cross_entropy", dict(x=r(5, 7), y=idx(7, 5)), lambda x, y: F.cross_entropy(x, y))
    case("nll_loss", dict(x=r(5, 7), y=idx(7, 5)), lambda x, y: F.nll_loss(F.log_softmax(x, 1), y))
    case("mse_loss", dict(x=r(5, 7), y=r(5, 7)), lambda x, y: F.mse_loss(x, y), grad=["x"])
    case("pad", dict(x=r(2, 3, 4, 4)), lambda x: F.pad(x, [1, 2, 0, 1], value=0.5))
    case("interpolate", dict(x=r(2, 3, 5, 5)), lambda x: F.interpolate(x, size=(8, 7), mode="bilinear", align_corners=False))
    case("grid_sample", dict(x=r(2, 3, 6, 6), g=torch.rand(2, 4, 5, 2) * 2 - 1), lambda x, g: F.grid_sample(x, g, align_corners=False))
    case("affine_grid", dict(th=r(2, 2, 3)), lambda th: F.affine_grid(th, [2, 1, 4, 5], align_corners=False))
    case("to_float64", dict(a=r(3, 4)), lambda a: a.double())
    case("to_bfloat16", dict(a=r(3, 4)), lambda a: a.bfloat16().float())
    case("contiguous_channels_last", dict(a=r(2, 3, 4, 5)), lambda a: a.contiguous(memory_format=torch.channels_last) * 2)
    return C


def make_ops():
    torch.manual_seed(1234)
    out = {}
    for name, (inputs, grad_names, fn) in op_cases().items():
        ins = {k: v.clone().requires_grad_(k in grad_names) for k, v in inputs.items()}
        res = fn(**ins)
        outs = list(res) if isinstance(res, tuple) else [res]
        entry = {"inputs": {k: enc(v) for k, v in inputs.items()}, "grad": grad_names,
                 "outputs": [enc(o) for o in outs], "grads": {}}
        diff = [o for o in outs if o.is_floating_point() and o.requires_grad]
        if grad_names and diff:
            weights = [torch.randn(o.shape) for o in diff]
            loss = sum((o * w).sum() for o, w in zip(diff, weights))
            loss.backward()
            entry["out_weights"] = [enc(w) for w in weights]
            entry["grads"] = {k: enc(ins[k].grad) for k in grad_names if ins[k].grad is not None}
        out[name] = entry
    write("ops.json", out)


# ---------------------------------------------------------------- nn state: BatchNorm statistics, optimizers, schedules
def make_nn():
    torch.manual_seed(7)
    res = {}
    # BatchNorm2d and 1d: running statistics after two train steps, then an eval forward.
    for kind, shape in [("2d", (4, 3, 5, 5)), ("1d", (6, 3))]:
        bn = nn.BatchNorm2d(3) if kind == "2d" else nn.BatchNorm1d(3)
        xs = [torch.randn(*shape) * 2 + 1 for _ in range(2)]
        for x in xs:
            bn(x)
        bn.eval()
        xe = torch.randn(*shape)
        res[f"bn{kind}"] = {"xs": [enc(x) for x in xs], "x_eval": enc(xe), "y_eval": enc(bn(xe)),
                            "state": {k: enc(v) for k, v in bn.state_dict().items()}}
    write("nn.json", res)


def ref_step(model, opt, loss, frozen):
    """The end of an iteration of main_swav.py / main_deepclusterv2.py: backward, the prototypes' gradients dropped
    while frozen, LARC + SGD step."""
    opt.zero_grad()
    loss.backward()
    if frozen:
        for name, p in model.named_parameters():
            if "prototypes" in name:
                p.grad = None
    larc_step(list(model.parameters()), opt)


def larc_step(params, optimizer, trust=0.001, clip=False, eps=1e-8):
    """apex.parallel.LARC.step, as SwAV calls it."""
    with torch.no_grad():
        wds = []
        for group in optimizer.param_groups:
            wd = group.get("weight_decay", 0)
            wds.append(wd)
            group["weight_decay"] = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                pn, gn = torch.norm(p.data), torch.norm(p.grad.data)
                if pn != 0 and gn != 0:
                    lr = trust * pn / (gn + pn * wd + eps)
                    if clip:
                        lr = min(lr / group["lr"], 1)
                    p.grad.data += wd * p.data
                    p.grad.data *= lr
    optimizer.step()
    for i, group in enumerate(optimizer.param_groups):
        group["weight_decay"] = wds[i]


def make_optim():
    res = {}
    for name, kw, use_larc in [
        ("sgd_momentum_wd", dict(lr=0.1, momentum=0.9, weight_decay=1e-4), False),
        ("sgd_nesterov", dict(lr=0.05, momentum=0.9, nesterov=True), False),
        ("sgd_dampening", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-3), False),
        ("sgd_plain", dict(lr=0.2), False),
        ("larc_sgd", dict(lr=0.6, momentum=0.9, weight_decay=1e-6), True),
        ("larc_sgd_clip", dict(lr=0.6, momentum=0.9, weight_decay=1e-6), "clip"),
    ]:
        torch.manual_seed(11)
        ps = [torch.randn(4, 3, requires_grad=True), torch.randn(5, requires_grad=True), torch.zeros(3, requires_grad=True)]
        init = [enc(p) for p in ps]
        opt = torch.optim.SGD(ps, **kw)
        grads = []
        for step in range(3):
            gs = [torch.randn(p.shape) for p in ps]
            gs[2] = gs[2] * (step != 1)  # a zero gradient on one step: LARC skips that parameter
            grads.append([enc(g) for g in gs])
            for p, g in zip(ps, gs):
                p.grad = g.clone()
            if use_larc:
                larc_step(ps, opt, clip=use_larc == "clip")
            else:
                opt.step()
        res[name] = {"options": kw, "larc": bool(use_larc), "clip": use_larc == "clip", "init": init, "grads": grads,
                     "final": [enc(p) for p in ps]}
    # SwAV's schedule (main_swav.py): numpy linspace warmup + cosine.
    sched = {}
    for name, (base, final, start, warm, epochs, iters) in {
        "swav_800ep": (4.8, 0.0048, 0.3, 10, 800, 3),
        "bs256": (0.6, 0.0006, 0.0, 0, 200, 5),
        "short": (0.3, 0.0, 0.0, 1, 4, 7),
    }.items():
        warmup = np.linspace(start, base, iters * warm)
        it = np.arange(iters * (epochs - warm))
        cosine = np.array([final + 0.5 * (base - final) * (1 + math.cos(math.pi * t / (iters * (epochs - warm)))) for t in it])
        sched[name] = {"base_lr": base, "final_lr": final, "start_warmup": start, "warmup_epochs": warm, "epochs": epochs,
                       "iters_per_epoch": iters, "values": np.concatenate((warmup, cosine)).tolist()}
    res["schedules"] = sched
    write("optim.json", res)


# ---------------------------------------------------------------- models
ARCHS = {
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
    "resnet50": lambda: torchvision.models.resnet50(num_classes=10),
    "resnet50w2": lambda: swav_resnet(widen=2),
}


def make_init_checksums():
    """Same seed, same construction order: the per-parameter sums and norms a TS model must reproduce."""
    res = {}
    for name in ["resnet18", "resnet50"]:
        torch.manual_seed(0)
        m = getattr(torchvision.models, name)()
        res[name] = {k: [float(v.double().sum()), float(v.double().norm())] for k, v in m.state_dict().items()}
    torch.manual_seed(0)
    m = swav_resnet(widen=1, normalize=True, hidden_mlp=64, output_dim=16, nmb_prototypes=[10, 12])
    res["swav_resnet50_head"] = {k: [float(v.double().sum()), float(v.double().norm())] for k, v in m.state_dict().items()}
    write("init.json", res)


def make_npy():
    """.npy files as numpy writes them: dtypes, Fortran order, big-endian, 0-d, empty."""
    d = os.path.join(HERE, "data", "npy")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(5)
    arrays = {
        "float32": rng.standard_normal((3, 4)).astype(np.float32),
        "float64": rng.standard_normal((2, 3, 2)),
        "float16": rng.standard_normal((5,)).astype(np.float16),
        "int64": rng.integers(-1000, 1000, (4, 2)).astype(np.int64),
        "int32": rng.integers(-1000, 1000, (3,)).astype(np.int32),
        "uint8": rng.integers(0, 255, (2, 2, 3)).astype(np.uint8),
        "bool": rng.random((3, 3)) > 0.5,
        "fortran": np.asfortranarray(rng.standard_normal((3, 5)).astype(np.float32)),
        "bigendian": rng.standard_normal((2, 3)).astype(">f4"),
        "scalar": np.array(3.25, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    for k, v in arrays.items():
        np.save(os.path.join(d, k + ".npy"), v)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({k: {"shape": list(v.shape), "values": np.ascontiguousarray(v).astype(np.float64).ravel().tolist()}
                   for k, v in arrays.items()}, f)
    print(f"wrote {d}")


def save_npy_dir(d, tensors):
    os.makedirs(d, exist_ok=True)
    for k, v in tensors.items():
        np.save(os.path.join(d, k + ".npy"), v.detach().contiguous().numpy())


def make_models(root):
    for name in ["resnet18", "resnet50", "resnet50w2"]:
        torch.manual_seed(3)
        m = ARCHS[name]()
        d = os.path.join(root, name)
        x = torch.randn(2, 3, 64, 64)
        save_npy_dir(os.path.join(d, "weights"), m.state_dict())
        m.train()
        y = m(x)
        w = torch.randn(y.shape)
        (y * w).sum().backward()
        tensors = {"x": x, "w": w, "y_train": y}
        tensors.update({"grad." + k: p.grad.clone() for k, p in m.named_parameters()})
        tensors.update({"after_train." + k: v.clone() for k, v in m.state_dict().items() if "running" in k or "num_batches" in k})
        m.eval()
        m.zero_grad(set_to_none=True)
        ye = m(x)
        tensors["y_eval"] = ye
        if name == "resnet18":  # eval-mode gradients for one model: the others' would add a gigabyte
            (ye * w).sum().backward()
            tensors.update({"grad_eval." + k: p.grad for k, p in m.named_parameters()})
        save_npy_dir(d, tensors)
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump({"arch": name, "params": [k for k, _ in m.named_parameters()], "state": list(m.state_dict().keys())}, f)
        print(f"wrote {d}")


# ---------------------------------------------------------------- SwAV's method (main_swav.py's train())
@torch.no_grad()
def ref_sinkhorn(out, epsilon=0.05, iters=3):
    Q = torch.exp(out / epsilon).t()
    B, K = Q.shape[1], Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(iters):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def ref_loss(output, bs, nmb_crops, crops_for_assign, temperature, queue=None, prototypes=None, embedding=None, use_queue=False):
    """The loss of one iteration; with a queue, its use and update as main_swav.py does them (in place)."""
    n = sum(nmb_crops)
    loss = 0
    for i, crop_id in enumerate(crops_for_assign):
        with torch.no_grad():
            out = output[bs * crop_id: bs * (crop_id + 1)].detach()
            if queue is not None:
                if use_queue or not torch.all(queue[i, -1, :] == 0):
                    use_queue = True
                    out = torch.cat((torch.mm(queue[i], prototypes.t()), out))
                queue[i, bs:] = queue[i, :-bs].clone()
                queue[i, :bs] = embedding[crop_id * bs: (crop_id + 1) * bs]
            q = ref_sinkhorn(out)[-bs:]
        subloss = 0
        for v in np.delete(np.arange(n), crop_id):
            x = output[bs * v: bs * (v + 1)] / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (n - 1)
    return loss / len(crops_for_assign), use_queue


def scores_like(rows, k, dim=8):
    z = F.normalize(torch.randn(rows, dim), dim=1)
    w = F.normalize(torch.randn(k, dim), dim=1)
    return z, w, z @ w.t()


def make_swav():
    torch.manual_seed(5)
    res = {"sinkhorn": [], "loss": []}
    for b, k in [(12, 7), (40, 30), (5, 64)]:
        _, _, s = scores_like(b, k)
        res["sinkhorn"].append({"scores": enc(s), "codes": enc(ref_sinkhorn(s))})
    for name, nmb, assign, bs, k, qlen in [("2+3", [2, 3], [0, 1], 4, 10, 0), ("2+6", [2, 6], [0, 1], 6, 20, 0),
                                            ("assign1", [2, 2], [1], 5, 9, 0), ("queue", [2, 2], [0, 1], 4, 10, 8)]:
        z, w, s = scores_like(sum(nmb) * bs, k)
        s = s.clone().requires_grad_(True)
        entry = {"nmb_crops": nmb, "crops_for_assign": assign, "batch_size": bs, "temperature": 0.1, "scores": enc(s)}
        if qlen:
            queue = F.normalize(torch.randn(len(assign), qlen, z.shape[1]), dim=2)
            entry["queue"] = enc(queue)
            entry["queue_scores"] = [enc(queue[i] @ w.t()) for i in range(len(assign))]
            entry["prototypes"], entry["embedding"] = enc(w), enc(z)
            loss, _ = ref_loss(s, bs, nmb, assign, 0.1, queue=queue, prototypes=w, embedding=z, use_queue=True)
            entry["queue_after"] = enc(queue)
        else:
            loss, _ = ref_loss(s, bs, nmb, assign, 0.1)
        loss.backward()
        entry["loss"], entry["grad"] = float(loss), enc(s.grad)
        res["loss"].append(entry)
    write("swav.json", res)


def make_swav_steps(root):
    """4 iterations of train() on a small model: queue filling then in use, prototypes frozen for 2, LARC + SGD."""
    from swav_reference import SwAVOnTorchvision
    os.makedirs(root, exist_ok=True)
    torch.manual_seed(9)
    model = SwAVOnTorchvision("resnet18", hidden_mlp=32, output_dim=16, nmb_prototypes=10)
    save_npy_dir(os.path.join(root, "init"), model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-6)
    bs, nmb, assign, freeze = 4, [2, 2], [0, 1], 2
    queue = torch.zeros(len(assign), 8, 16)
    use_queue = False
    lrs, losses = [0.05, 0.1, 0.2, 0.15], []
    for it, lr in enumerate(lrs):
        crops = [torch.randn(bs, 3, 32, 32) for _ in range(2)] + [torch.randn(bs, 3, 16, 16) for _ in range(2)]
        save_npy_dir(os.path.join(root, f"crops{it}"), {str(i): c for i, c in enumerate(crops)})
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.no_grad():
            model.prototypes.weight.copy_(F.normalize(model.prototypes.weight.data.clone(), dim=1, p=2))
        embedding, output = model(crops)
        loss, use_queue = ref_loss(output, bs, nmb, assign, 0.1, queue=queue, prototypes=model.prototypes.weight,
                                   embedding=embedding.detach(), use_queue=use_queue)
        ref_step(model, opt, loss, it < freeze)
        losses.append(float(loss))
    save_npy_dir(os.path.join(root, "final"), model.state_dict())
    np.save(os.path.join(root, "queue.npy"), queue.numpy())
    with open(os.path.join(root, "steps.json"), "w") as f:
        json.dump({"lrs": lrs, "losses": losses, "batch_size": bs, "nmb_crops": nmb, "crops_for_assign": assign,
                   "freeze_prototypes_niters": freeze, "queue_length": 8, "state": list(model.state_dict().keys())}, f)
    print(f"wrote {root}")


# ---------------------------------------------------------------- DeepCluster-v2 and SeLa-v2 (main_deepclusterv2.py)
def ref_kmeans(bank, k, iterations, seed=None):
    """cluster_memory's k-means of one head, world size 1 (after torch.manual_seed(seed) when a seed is given). The
    M step sums each cluster's rows with torch.sum in float32 over the rows in ascending index order, one cluster at
    a time, as the reference's loop over get_indices_sparse does. Returns (centroids, assignments, empty clusters of
    each M step)."""
    if seed is not None:
        torch.manual_seed(seed)
    random_idx = torch.randperm(len(bank))[:k]
    centroids = bank[random_idx]
    empty = []
    for n_iter in range(iterations + 1):
        assignments = torch.mm(bank, centroids.t()).max(dim=1)[1]
        if n_iter == iterations:
            break
        counts = torch.zeros(k).int()
        sums = torch.zeros(k, bank.shape[1])
        for c in range(k):
            rows = torch.nonzero(assignments == c).squeeze(1)
            if len(rows) > 0:
                sums[c] = torch.sum(bank[rows], dim=0)
                counts[c] = len(rows)
        mask = counts > 0
        empty.append(int((~mask).sum()))
        centroids[mask] = sums[mask] / counts[mask].unsqueeze(1)
        centroids = F.normalize(centroids, dim=1, p=2)
    return centroids, assignments, empty


def clustered_bank(n, d, clusters, noise=0.3):
    """Rows on the unit sphere around `clusters` random centers."""
    centers = F.normalize(torch.randn(clusters, d), dim=1)
    labels = torch.randint(0, clusters, (n,))
    return F.normalize(centers[labels] + noise * torch.randn(n, d) / math.sqrt(d), dim=1)


def dc_loss(output, targets, nmb_crops, temperature):
    """main_deepclusterv2.py's train() loss: cross-entropy of each head, targets repeated over the crops, mean of heads."""
    ce = nn.CrossEntropyLoss(ignore_index=-100)
    loss = 0
    for h in range(len(output)):
        loss += ce(output[h] / temperature, targets[h].repeat(sum(nmb_crops)))
    return loss / len(output)


def cluster_memory(model, index, bank, n_data, nmb_prototypes, iterations=10):
    """main_deepclusterv2.py's cluster_memory, world size 1: k-means of head h on bank j (j = 0, 1, 0, ...), its
    centroids copied into prototypes{h}; assignments (heads, n_data) with -100 where no bank row has the index."""
    assignments = -100 * torch.ones(len(nmb_prototypes), n_data).long()
    j = 0
    with torch.no_grad():
        for h, k in enumerate(nmb_prototypes):
            centroids, local, _ = ref_kmeans(bank[j], k, iterations)
            getattr(model.prototypes, f"prototypes{h}").weight.copy_(centroids)
            assignments[h][index] = local
            j = (j + 1) % len(bank)
    return assignments


def normalize_prototypes(model):
    """main_swav.py's in-place L2 normalization of the prototypes, for every head."""
    with torch.no_grad():
        for m in model.prototypes.children():
            w = F.normalize(m.weight.data.clone(), dim=1, p=2)
            m.weight.copy_(w)


def sela_assign(model, bank, index, n_data, eps=0.05, iters=3):
    """SeLa-v2's labels (no reference code: the rule of this project's goldens). For head h on bank j = h mod len(bank):
    the prototypes are L2-normalized in place first, scores = bank[j] @ prototypes{h}.weight^T, labels = argmax over
    the clusters of SwAV's Sinkhorn-Knopp codes ref_sinkhorn(scores, eps, iters). The prototypes are not overwritten.
    Returns the (heads, n_data) int64 table, -100 where no bank row has the index."""
    heads = list(model.prototypes.children())
    assignments = -100 * torch.ones(len(heads), n_data).long()
    normalize_prototypes(model)
    with torch.no_grad():
        for h, m in enumerate(heads):
            scores = bank[h % len(bank)] @ m.weight.t()
            assignments[h][index] = ref_sinkhorn(scores, eps, iters).argmax(dim=1)
    return assignments


def make_dc_cases(root):
    # a) k-means of one head
    kmeans = []
    for i, (n, d, k, iters, seed, clusters) in enumerate([(4000, 32, 40, 10, 31, 30), (3000, 128, 300, 10, 7, 100),
                                                           (2000, 16, 10, 3, 123, 12)]):
        torch.manual_seed(1000 + i)
        bank = clustered_bank(n, d, clusters)
        if i == 1:  # exact duplicates among the initial picks: two centroids coincide, the second one gets no row
            torch.manual_seed(seed)
            picks = torch.randperm(n)[:k]
            for a, b in [(0, 1), (4, 5), (10, 11), (20, 21)]:
                bank[picks[b]] = bank[picks[a]]
        centroids, assignments, empty = ref_kmeans(bank, k, iters, seed)
        save_npy_dir(os.path.join(root, f"kmeans{i}"), {"bank": bank, "centroids": centroids, "assignments": assignments})
        kmeans.append({"dir": f"kmeans{i}", "seed": seed, "k": k, "iterations": iters, "empty_clusters": sum(empty),
                       "empty_per_iteration": empty})
        print(f"kmeans{i}: N={n} D={d} K={k} empty clusters per M step {empty}")
    assert kmeans[1]["empty_clusters"] > 0
    # b) the loss
    torch.manual_seed(41)
    losses = []
    for i, (nmb, bs, ks, temp) in enumerate([([2, 3], 4, [7, 7, 5], 0.1), ([2], 6, [9], 0.1), ([2, 6], 3, [4, 6], 0.2)]):
        scores = [scores_like(sum(nmb) * bs, k)[2].clone().requires_grad_(True) for k in ks]
        targets = torch.stack([torch.randint(0, k, (bs,)) for k in ks])
        targets[torch.rand(targets.shape) < 0.25] = -100
        targets[0, 0] = -100  # at least one ignored entry
        if i == 0:  # one head with a single known target
            targets[2] = -100
            targets[2, 1] = 3
        loss = dc_loss(scores, targets, nmb, temp)
        loss.backward()
        t = {f"scores{h}": s for h, s in enumerate(scores)}
        t.update({f"grad{h}": s.grad for h, s in enumerate(scores)})
        t["targets"] = targets
        save_npy_dir(os.path.join(root, f"loss{i}"), t)
        losses.append({"dir": f"loss{i}", "nmb_crops": nmb, "batch_size": bs, "temperature": temp, "heads": len(ks),
                       "loss": float(loss)})
    # c) SeLa-v2's labels
    torch.manual_seed(43)
    sela = []
    for i, (n, k, eps, iters) in enumerate([(500, 20, 0.05, 3), (2000, 100, 0.05, 3), (300, 10, 0.1, 5)]):
        scores = scores_like(n, k, dim=16)[2]
        codes = ref_sinkhorn(scores.clone(), eps, iters)
        save_npy_dir(os.path.join(root, f"sela{i}"), {"scores": scores, "codes": codes, "labels": codes.argmax(dim=1)})
        sela.append({"dir": f"sela{i}", "epsilon": eps, "iterations": iters})
    for name, obj in [("kmeans", kmeans), ("loss", losses), ("sela", sela)]:
        with open(os.path.join(root, name + ".json"), "w") as f:
            json.dump(obj, f)


def make_dc_steps(root, method):
    """Init of the memory bank, clustering, 3 iterations of train() and the next epoch's clustering on a small model:
    DeepCluster-v2 as main_deepclusterv2.py (k-means, prototypes frozen) or SeLa-v2 (sela_assign, prototypes trained
    and normalized as main_swav.py)."""
    from swav_reference import SwAVOnTorchvision
    os.makedirs(root, exist_ok=True)
    nmb_protos, n_data, bs, nmb, assign, temp, kiters = [10, 10, 8], 14, 4, [2, 2], [0, 1], 0.1, 10
    freeze = 300000 if method == "dc" else 0
    torch.manual_seed(9)
    model = SwAVOnTorchvision("resnet18", hidden_mlp=32, output_dim=16, nmb_prototypes=nmb_protos)
    save_npy_dir(os.path.join(root, "init"), model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-6)
    torch.manual_seed(77)  # the data: the init batches, then the training batches
    def batches():
        perm = torch.randperm(n_data)
        return [(perm[b * bs:(b + 1) * bs].clone(),
                 [torch.randn(bs, 3, 32, 32) for _ in range(2)] + [torch.randn(bs, 3, 16, 16) for _ in range(2)])
                for b in range(n_data // bs)]
    init_batches, train_batches = batches(), batches()
    for name, bl in [("initb", init_batches), ("batch", train_batches)]:
        for b, (idx, crops) in enumerate(bl):
            save_npy_dir(os.path.join(root, f"{name}{b}"), {"idx": idx, **{str(c): x for c, x in enumerate(crops)}})
    # init_memory: train mode (BatchNorm statistics move), one forward per crop used
    model.train()
    size = len(init_batches) * bs
    index, bank = torch.zeros(size).long(), torch.zeros(len(assign), size, 16)
    with torch.no_grad():
        start = 0
        for idx, crops in init_batches:
            outs = [model(crops[c])[0] for c in assign]
            index[start:start + len(idx)] = idx
            for m, e in enumerate(outs):
                bank[m][start:start + len(idx)] = e
            start += len(idx)
    np.save(os.path.join(root, "bank_init.npy"), bank.numpy())
    np.save(os.path.join(root, "bank_index_init.npy"), index.numpy())

    def cluster(epoch, seed):
        torch.manual_seed(seed)
        if method == "dc":
            a = cluster_memory(model, index, bank, n_data, nmb_protos, kiters)
        else:
            a = sela_assign(model, bank, index, n_data, 0.05, 3)
        np.save(os.path.join(root, f"assign_epoch{epoch}.npy"), a.numpy())
        for h, m in enumerate(model.prototypes.children()):
            np.save(os.path.join(root, f"protos_epoch{epoch}_{h}.npy"), m.weight.detach().numpy())
        return a

    assignments = cluster(0, 1234)
    lrs, losses = [0.05, 0.1, 0.2], []
    start = 0
    for it, ((idx, crops), lr) in enumerate(zip(train_batches, lrs)):
        for g in opt.param_groups:
            g["lr"] = lr
        if method == "sela":
            normalize_prototypes(model)
        emb, output = model(crops)
        emb = emb.detach()
        loss = dc_loss(output, assignments[:, idx], nmb, temp)
        ref_step(model, opt, loss, it < freeze)
        index[start:start + bs] = idx
        for m, c in enumerate(assign):
            bank[m][start:start + bs] = emb[c * bs:(c + 1) * bs]
        start += bs
        losses.append(float(loss))
    save_npy_dir(os.path.join(root, "final"), model.state_dict())
    np.save(os.path.join(root, "bank_final.npy"), bank.numpy())
    np.save(os.path.join(root, "bank_index_final.npy"), index.numpy())
    cluster(1, 4321)
    meta = {"method": method, "lrs": lrs, "losses": losses, "batch_size": bs, "nmb_crops": nmb, "crops_for_assign": assign,
            "nmb_prototypes": nmb_protos, "n_data": n_data, "temperature": temp,
            "kmeans_iterations": kiters if method == "dc" else None, "seeds": [1234, 4321],
            "freeze_prototypes_niters": freeze, "state": list(model.state_dict().keys())}
    if method == "sela":
        meta.update(epsilon=0.05, sinkhorn_iterations=3)
    with open(os.path.join(root, "steps.json"), "w") as f:
        json.dump(meta, f)
    print(f"{method} steps: losses {[round(x, 5) for x in losses]}; epoch-0 assignments\n{assignments.numpy()}")


def make_deepcluster(root):
    import time
    t0 = time.perf_counter()
    os.makedirs(root, exist_ok=True)
    make_dc_cases(root)
    make_dc_steps(os.path.join(root, "steps"), "dc")
    make_dc_steps(os.path.join(root, "sela_steps"), "sela")
    print(f"wrote {root} in {time.perf_counter() - t0:.1f} s")


# ---------------------------------------------------------------- the linear protocol (eval_linear.py) on features
def make_knn():
    # solo-learn's WeightedKNNClassifier / VISSL's kNN: cosine similarities, the k largest vote with exp(sim / T)
    g = torch.Generator().manual_seed(5)
    classes = 5
    ytr = torch.randint(0, classes, (300,), generator=g)
    centers = torch.randn(classes, 16, generator=g)
    xtr = centers[ytr] + 1.5 * torch.randn(300, 16, generator=g)
    yte = torch.randint(0, classes, (120,), generator=g)
    xte = centers[yte] + 1.5 * torch.randn(120, 16, generator=g)
    cases = []
    for k, t in [(1, 0.1), (5, 0.07), (20, 0.1), (200, 0.1), (500, 0.5)]:
        bank = torch.nn.functional.normalize(xtr, dim=1)
        q = torch.nn.functional.normalize(xte, dim=1)
        sim = q @ bank.t()
        kk = min(k, bank.shape[0])
        values, indices = sim.topk(kk, dim=1)
        votes = torch.zeros(q.shape[0], classes).scatter_add_(1, ytr[indices], (values / t).exp())
        pred = votes.argmax(1)
        cases.append({"k": k, "temperature": t, "predictions": enc(pred), "top1": (pred == yte).sum().item() / len(yte)})
    write("knn.json", {"train": enc(xtr), "train_labels": enc(ytr), "test": enc(xte), "test_labels": enc(yte), "cases": cases})


def make_linear():
    """eval_linear.py's head and training on fixed features, without shuffling: RegLog's Linear under the seed
    (weight N(0, 0.01), bias 0), SGD with momentum and weight decay, CosineAnnealingLR stepped per epoch, batches of
    the rows in order with the last partial one kept; per-epoch validation top-1 / top-5."""
    torch.manual_seed(17)
    n, nv, d, c = 300, 120, 32, 7
    centers = torch.randn(c, d) * 2
    ytr, yva = torch.randint(0, c, (n,)), torch.randint(0, c, (nv,))
    xtr, xva = centers[ytr] + torch.randn(n, d) * 3, centers[yva] + torch.randn(nv, d) * 3
    cases = []
    for epochs, bs, lr, wd, nesterov, final in [(6, 64, 0.3, 1e-6, False, 0.0), (4, 50, 0.1, 1e-4, True, 0.01)]:
        torch.manual_seed(31)
        head = nn.Linear(d, c)
        head.weight.data.normal_(mean=0.0, std=0.01)
        head.bias.data.zero_()
        opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=wd, nesterov=nesterov)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=final)
        top1, top5 = [], []
        for _ in range(epochs):
            for s in range(0, n, bs):
                loss = F.cross_entropy(head(xtr[s:s + bs]), ytr[s:s + bs])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
            with torch.no_grad():
                top = head(xva).topk(5, 1).indices.eq(yva.unsqueeze(1))
                top1.append(float(top[:, :1].sum()) / nv)
                top5.append(float(top.sum()) / nv)
        cases.append({"epochs": epochs, "batch_size": bs, "lr": lr, "weight_decay": wd, "nesterov": nesterov, "final_lr": final,
                      "seed": 31, "weight": enc(head.weight), "bias": enc(head.bias), "top1": top1, "top5": top5})
    write("linear.json", {"train_x": enc(xtr), "train_y": enc(ytr), "val_x": enc(xva), "val_y": enc(yva), "cases": cases,
                          "use_bn": linear_use_bn(xtr.view(n, 8, 2, 2), ytr, xva.view(nv, 8, 2, 2), yva, c)})


def linear_use_bn(xtr, ytr, xva, yva, c, epochs=3, bs=64):
    """RegLog with use_bn on pooled maps (as after eval_linear.py's AvgPool2d(6, 1)): BatchNorm2d in train mode while
    the head trains, in eval mode for validation; its parameters in the optimizer with the linear layer's."""
    torch.manual_seed(31)
    bn = nn.BatchNorm2d(xtr.shape[1])
    linear = nn.Linear(xtr[0].numel(), c)
    linear.weight.data.normal_(mean=0.0, std=0.01)
    linear.bias.data.zero_()
    head = nn.Sequential(bn, nn.Flatten(), linear)
    opt = torch.optim.SGD(head.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=0)
    top1 = []
    for _ in range(epochs):
        head.train()
        for s in range(0, xtr.shape[0], bs):
            loss = F.cross_entropy(head(xtr[s:s + bs]), ytr[s:s + bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        head.eval()
        with torch.no_grad():
            top1.append(float(head(xva).argmax(1).eq(yva).sum()) / xva.shape[0])
    return {"epochs": epochs, "batch_size": bs, "top1": top1, "weight": enc(linear.weight), "bias": enc(linear.bias), "bn_weight": enc(bn.weight),
            "bn_bias": enc(bn.bias), "running_mean": enc(bn.running_mean), "running_var": enc(bn.running_var)}


def make_semisup(root):
    """eval_semisup.py's fine-tuning on fixed batches: a torchvision ResNet-18 trunk with SwAV's head layout
    (projection_head = Linear(512, classes)), SGD momentum 0.9 without weight decay, the trunk and the head (names
    with 'head') at their own learning rates, MultiStepLR per epoch; train mode for the steps (a partial last batch
    included), eval mode for validation."""
    os.makedirs(root, exist_ok=True)
    torch.manual_seed(9)
    t = torchvision.models.resnet18()
    model = nn.Module()
    for name in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"]:
        setattr(model, name, getattr(t, name))
    model.projection_head = nn.Linear(512, 8)

    def fwd(x):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        return model.projection_head(torch.flatten(model.avgpool(x), 1))

    save_npy_dir(os.path.join(root, "init"), model.state_dict())
    trunk = [p for n, p in model.named_parameters() if "head" not in n]
    head = [p for n, p in model.named_parameters() if "head" in n]
    lr, lr_last, milestones, gamma = 0.005, 0.05, [1], 0.2
    opt = torch.optim.SGD([{"params": trunk}, {"params": head, "lr": lr_last}], lr=lr, momentum=0.9, weight_decay=0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=gamma)
    val_x, val_y = torch.randn(10, 3, 32, 32), torch.randint(0, 8, (10,))
    save_npy_dir(os.path.join(root, "val"), {"x": val_x, "y": val_y})
    top1, top5, losses = [], [], []
    for epoch in range(2):
        model.train()
        for b, size in enumerate([6, 6, 4]):
            x, y = torch.randn(size, 3, 32, 32), torch.randint(0, 8, (size,))
            save_npy_dir(os.path.join(root, f"e{epoch}b{b}"), {"x": x, "y": y})
            loss = F.cross_entropy(fwd(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        model.eval()
        with torch.no_grad():
            hits = fwd(val_x).topk(5, 1).indices.eq(val_y.unsqueeze(1))
        top1.append(float(hits[:, :1].sum()) / 10)
        top5.append(float(hits.sum()) / 10)
        sched.step()
    save_npy_dir(os.path.join(root, "final"), model.state_dict())
    with open(os.path.join(root, "semisup.json"), "w") as f:
        json.dump({"lr": lr, "lr_last_layer": lr_last, "decay_epochs": milestones, "gamma": gamma, "batches": [6, 6, 4],
                   "top1": top1, "top5": top5, "losses": losses, "state": list(model.state_dict().keys())}, f)
    print(f"wrote {root}")


# ---------------------------------------------------------------- multi-crop augmentation (torchvision's own)
def make_augment():
    import torchvision.transforms as T
    import torchvision.transforms.functional as TF
    torch.manual_seed(17)
    n = 20000
    res = {"n": n, "crops": []}
    img = torch.zeros(3, 375, 500)
    for scale in [(0.14, 1.0), (0.05, 0.14), (0.08, 1.0)]:
        area, logr, fallback = [], [], 0
        for _ in range(n):
            i, j, h, w = T.RandomResizedCrop.get_params(img, scale=scale, ratio=(3 / 4, 4 / 3))
            area.append(h * w / (375 * 500))
            logr.append(math.log(w / h))
        area, logr = np.array(area), np.array(logr)
        res["crops"].append({"scale": scale, "area_mean": area.mean(), "area_std": area.std(), "logr_mean": logr.mean(),
                             "logr_std": logr.std()})
    cj = T.ColorJitter(0.8, 0.8, 0.8, 0.2)
    b, c, s_, h = zip(*[cj.get_params(cj.brightness, cj.contrast, cj.saturation, cj.hue)[1:] for _ in range(n)])
    res["jitter"] = {"brightness": [np.mean(b), np.std(b)], "contrast": [np.mean(c), np.std(c)],
                     "saturation": [np.mean(s_), np.std(s_)], "hue": [np.mean(h), np.std(h)]}
    # pixel operations on tensors, as torchvision's functional ops compute them
    x = torch.rand(4, 3, 12, 10)
    f = [1.3, 0.6, 1.7, 0.1]
    hue = [0.15, -0.1, 0.05, -0.2]
    res["pixels"] = {
        "x": enc(x), "factors": f, "hue": hue,
        "brightness": enc(torch.stack([TF.adjust_brightness(x[i], f[i]) for i in range(4)])),
        "contrast": enc(torch.stack([TF.adjust_contrast(x[i], f[i]) for i in range(4)])),
        "saturation": enc(torch.stack([TF.adjust_saturation(x[i], f[i]) for i in range(4)])),
        "hue_out": enc(torch.stack([TF.adjust_hue(x[i], hue[i]) for i in range(4)])),
        "grayscale": enc(torch.stack([TF.rgb_to_grayscale(x[i], 3) for i in range(4)])),
        "crop_box": [2, 3, 7, 6], "crop_size": 9,
        "resized_crop": enc(TF.resized_crop(x, 2, 3, 7, 6, [9, 9], antialias=False)),
        "resized_crop_flip": enc(TF.hflip(TF.resized_crop(x, 2, 3, 7, 6, [9, 9], antialias=False))),
    }
    write("augment.json", res)


# ---------------------------------------------------------------- checkpoints: zoo-like files, conversions, hostile files
def swav_like(arch, hidden, protos):
    """A trunk with SwAV's head, named as the released files name it (flat, every key prefixed "module.")."""
    trunk = getattr(torchvision.models, arch)()
    trunk.fc = nn.Identity()
    dim = 512 if arch == "resnet18" else 2048
    head = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 128))
    prototypes = nn.Linear(128, protos, bias=False)
    with torch.no_grad():  # running statistics that matter in eval mode
        for m in trunk.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    sd = OrderedDict()
    for prefix, mod in [("", trunk), ("projection_head.", head), ("prototypes.", prototypes)]:
        for k, v in mod.state_dict().items():
            sd["module." + prefix + k] = v
    return trunk, sd


class Payload:
    """Runs a shell command when unpickled by a loader that executes globals."""
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class EvalPayload:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


def make_checkpoints(root):
    import pickle, zipfile
    os.makedirs(root, exist_ok=True)
    torch.manual_seed(21)
    x = torch.randn(4, 3, 64, 64)
    np.save(os.path.join(root, "images.npy"), x.numpy())
    for arch, hidden, protos in [("resnet18", 256, 100), ("resnet50", 2048, 3000)]:
        trunk, sd = swav_like(arch, hidden, protos)
        trunk.eval()
        with torch.no_grad():
            np.save(os.path.join(root, f"{arch}_features.npy"), trunk(x).numpy())
        torch.save(sd, os.path.join(root, f"{arch}_zip.pth"))
        torch.save(sd, os.path.join(root, f"{arch}_legacy.pth.tar"), _use_new_zipfile_serialization=False)
    # a training checkpoint around the state dict, legacy format, with the extras real ones carry
    _, sd = swav_like("resnet18", 256, 100)
    opt_state = {"state": {0: {"momentum_buffer": torch.randn(3)}}, "param_groups": [{"lr": 0.6, "momentum": 0.9, "params": [0]}]}
    torch.save({"epoch": 5, "state_dict": sd, "optimizer": opt_state, "best_acc": np.float64(0.75)},
               os.path.join(root, "training_checkpoint.pth.tar"), _use_new_zipfile_serialization=False)
    # conversions: several dtypes and views of one storage
    base = torch.randn(4, 6)
    mixed = OrderedDict([("w", base), ("view", base[1:3]), ("t", base.t()), ("col", base[:, 2]),
                         ("i64", torch.arange(-5, 7, dtype=torch.int64).view(3, 4)), ("f16", torch.randn(5).half()),
                         ("u8", torch.randint(0, 255, (3,), dtype=torch.uint8)), ("flag", torch.tensor([True, False]))])
    torch.save(mixed, os.path.join(root, "mixed_legacy.pth.tar"), _use_new_zipfile_serialization=False)
    # hostile and broken files
    # what the payloads would create if a loader ran them (the tests check that it never appears)
    marker = os.environ.get("SWAV_PWNED_MARKER", os.path.join(root, "pwned"))
    torch.save({"x": torch.ones(2), "evil": Payload(f"touch {marker}")}, os.path.join(root, "evil_zip.pth"))
    torch.save({"x": torch.ones(2), "evil": Payload(f"touch {marker}")}, os.path.join(root, "evil_legacy.pth"),
               _use_new_zipfile_serialization=False)
    with open(os.path.join(root, "evil_eval.pth"), "wb") as f:
        pickle.dump(EvalPayload(f"__import__('os').system('touch {marker}')"), f, protocol=2)
    good = open(os.path.join(root, "resnet18_zip.pth"), "rb").read()
    open(os.path.join(root, "truncated_zip.pth"), "wb").write(good[: len(good) // 2])
    legacy = open(os.path.join(root, "resnet18_legacy.pth.tar"), "rb").read()
    open(os.path.join(root, "truncated_legacy.pth.tar"), "wb").write(legacy[: len(legacy) - 1000])
    with zipfile.ZipFile(os.path.join(root, "resnet18_zip.pth")) as zin, \
            zipfile.ZipFile(os.path.join(root, "short_storage.pth"), "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/data/0"):
                data = data[: len(data) // 2]
            zout.writestr(info.filename, data)
    open(os.path.join(root, "random.pth"), "wb").write(np.random.default_rng(0).bytes(4096))
    assert not os.path.exists(marker)
    print(f"wrote {root}")


# ---------------------------------------------------------------- JPEG decoding (PIL, as the reference's loader)
def make_jpeg():
    from PIL import Image
    rng = np.random.default_rng(5)
    im = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((37, 23), Image.BICUBIC)
    files = {"rgb420.jpg": dict(quality=85), "rgb444.jpg": dict(quality=95, subsampling=0)}
    res = {}
    for name, opts in files.items():
        im.save(os.path.join(HERE, "data", name), **opts)
    im.convert("L").save(os.path.join(HERE, "data", "gray.jpg"), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    im.save(os.path.join(HERE, "data", "rot6.jpg"), quality=90, exif=exif)
    for name in [*files, "gray.jpg"]:
        with Image.open(os.path.join(HERE, "data", name)) as f:
            res[name] = enc(torch.from_numpy(np.asarray(f.convert("RGB")).copy()))
    with Image.open(os.path.join(HERE, "data", "rot6.jpg")) as f:  # upright, as sharp turns it
        res["rot6.jpg"] = enc(torch.from_numpy(np.asarray(f.convert("RGB").transpose(Image.Transpose.ROTATE_270)).copy()))
    write("jpeg.json", res)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--jpeg", action="store_true")
    ap.add_argument("--linear", action="store_true")
    ap.add_argument("--knn", action="store_true")
    ap.add_argument("--models", default=None)
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--swav-steps", default=None)
    ap.add_argument("--semisup", default=None)
    ap.add_argument("--deepcluster", default=None)
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.small:
        make_ops()
        make_nn()
        make_optim()
        make_init_checksums()
        make_npy()
        make_swav()
        make_augment()
        make_linear()
        make_knn()
    if a.knn:
        make_knn()
    if a.linear:
        make_linear()
    if a.small or a.jpeg:
        make_jpeg()
    if a.models:
        make_models(a.models)
    if a.checkpoints:
        make_checkpoints(a.checkpoints)
    if a.swav_steps:
        make_swav_steps(a.swav_steps)
    if a.semisup:
        make_semisup(a.semisup)
    if a.deepcluster:
        make_deepcluster(a.deepcluster)
