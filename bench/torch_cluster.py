"""The PyTorch peer of DeepCluster-v2's clustering: main_deepclusterv2.py's cluster_memory for world size 1 on the
CPU, as written (its Python loop over the clusters of get_indices_sparse), the torch.distributed calls and .cuda()
removed. Times cluster_memory only, on a random normalized memory bank (banks x n x dim).

usage: /usr/bin/python3 bench/torch_cluster.py [--n 60000] [--dim 128] [--heads 3] [--k 3000] [--banks 2] [--iters 10]
                                               [--seed 31] [--threads 2] [--json]
stdout: one JSON line {"seconds", "n", "k", "heads", "torch", ...}; stderr: the time of the mm+max parts against
the M step's Python parts (get_indices_sparse, the loop over clusters, the centroid update), accumulated."""
import argparse, json, sys, time
import numpy as np
import torch
import torch.nn as nn

try:
    from scipy.sparse import csr_matrix

    def get_indices_sparse(data):
        """The reference's own."""
        cols = np.arange(data.size)
        M = csr_matrix((cols, (data.ravel(), cols)), shape=(int(data.max()) + 1, data.size))
        return [np.unravel_index(row.data, data.shape) for row in M]

    INDICES = "scipy.sparse.csr_matrix"
except ImportError:
    def get_indices_sparse(data):
        """Without scipy (Debian's python3-scipy absent): the same list, from numpy. Row c of the reference's csr matrix
        holds the flat positions where data == c in ascending order, unravelled to a 1-tuple of arrays for 1-D data;
        a stable argsort grouped by np.bincount gives exactly those, one entry per value 0 .. max (empty ones too)."""
        flat = data.ravel()
        order = np.argsort(flat, kind="stable")
        counts = np.bincount(flat, minlength=int(flat.max()) + 1)
        return [np.unravel_index(g, data.shape) for g in np.split(order, np.cumsum(counts)[:-1])]

    INDICES = "numpy argsort (scipy not installed)"

T = {"mm_max": 0.0, "indices": 0.0, "loop": 0.0, "update": 0.0}


def cluster_memory(prototypes, nmb_prototypes, feat_dim, local_memory_index, local_memory_embeddings, size_dataset,
                   nmb_kmeans_iters=10):
    j = 0
    assignments = -100 * torch.ones(len(nmb_prototypes), size_dataset).long()
    with torch.no_grad():
        for i_K, K in enumerate(nmb_prototypes):
            # init centroids with elements from the memory bank (rank 0's: the only one)
            random_idx = torch.randperm(len(local_memory_embeddings[j]))[:K]
            assert len(random_idx) >= K, "please reduce the number of centroids"
            centroids = local_memory_embeddings[j][random_idx]

            for n_iter in range(nmb_kmeans_iters + 1):
                t0 = time.perf_counter()
                # E step
                dot_products = torch.mm(local_memory_embeddings[j], centroids.t())
                _, local_assignments = dot_products.max(dim=1)
                t1 = time.perf_counter()
                T["mm_max"] += t1 - t0

                # finish
                if n_iter == nmb_kmeans_iters:
                    break

                # M step
                where_helper = get_indices_sparse(local_assignments.cpu().numpy())
                t2 = time.perf_counter()
                T["indices"] += t2 - t1
                counts = torch.zeros(K).int()
                emb_sums = torch.zeros(K, feat_dim)
                for k in range(len(where_helper)):
                    if len(where_helper[k][0]) > 0:
                        emb_sums[k] = torch.sum(local_memory_embeddings[j][where_helper[k][0]], dim=0)
                        counts[k] = len(where_helper[k][0])
                t3 = time.perf_counter()
                T["loop"] += t3 - t2
                mask = counts > 0
                centroids[mask] = emb_sums[mask] / counts[mask].unsqueeze(1)

                # normalize centroids
                centroids = nn.functional.normalize(centroids, dim=1, p=2)
                T["update"] += time.perf_counter() - t3

            getattr(prototypes, "prototypes" + str(i_K)).weight.copy_(centroids)

            # the assignments and indexes of the one process
            assignments[i_K][local_memory_index.cpu()] = local_assignments.cpu()

            # next memory bank to use
            j = (j + 1) % len(local_memory_embeddings)

    return assignments


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--k", type=int, default=3000)
    p.add_argument("--banks", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--seed", type=int, default=31)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    bank = nn.functional.normalize(torch.randn(a.banks, a.n, a.dim), dim=2)
    index = torch.arange(a.n)
    nmb = [a.k] * a.heads
    prototypes = nn.Module()
    for i, k in enumerate(nmb):
        prototypes.add_module(f"prototypes{i}", nn.Linear(a.dim, k, bias=False))
    t0 = time.perf_counter()
    assignments = cluster_memory(prototypes, nmb, a.dim, index, bank, a.n, a.iters)
    seconds = time.perf_counter() - t0
    assert int((assignments < 0).sum()) == 0
    res = {"seconds": round(seconds, 4), "n": a.n, "k": a.k, "heads": a.heads, "dim": a.dim, "banks": a.banks,
           "iters": a.iters, "threads": a.threads, "torch": torch.__version__, "indices": INDICES}
    print(json.dumps(res) if a.json else f"cluster_memory: {seconds:.3f} s ({res})")
    python = T["indices"] + T["loop"] + T["update"]
    print(f"breakdown: mm+max {T['mm_max']:.3f} s; python M step {python:.3f} s (get_indices_sparse {T['indices']:.3f}, "
          f"loop over clusters {T['loop']:.3f}, centroid update+normalize {T['update']:.3f}); "
          f"other {seconds - T['mm_max'] - python:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
