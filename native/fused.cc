// Fused steps: work that PyTorch runs as a dozen small operators, done in one call where the per-call cost of
// reaching libtorch from JS would be most of the time (a linear head on cached features: 256 x 512 x 10 per step).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <immintrin.h>

#include <cmath>
#include <vector>

#include "errors.h"
#include "tensor_handle.h"

namespace swav {
namespace {

// linearCrossEntropyGrad(x, y, weight, bias) -> [gradWeight, gradBias, lossSum]: mean cross-entropy of
// x weight^T + bias against y, its gradients written out as autograd computes them, in its order: log_softmax's
// backward go - exp(out) * sum(go) with nll's go = -1/B at the targets, addmm's (x^T g)^T and g summed over rows.
Napi::Value linearCrossEntropyGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& x = unwrapTensor(env, info[0], "x");
  const at::Tensor& y = unwrapTensor(env, info[1], "y");
  const at::Tensor& weight = unwrapTensor(env, info[2], "weight");
  const at::Tensor& bias = unwrapTensor(env, info[3], "bias");
  at::Tensor gw, gb;
  double loss = 0;
  guarded(env, "linearCrossEntropyGrad", [&] {
    TORCH_CHECK(x.dim() == 2 && y.dim() == 1 && y.size(0) == x.size(0), "x must be B x D and y B labels, got ", x.sizes(), " and ", y.sizes());
    at::NoGradGuard noGrad;
    const int64_t n = x.size(0);
    at::Tensor logp = at::log_softmax(at::linear(x, weight, bias), 1);
    at::Tensor target = y.unsqueeze(1);
    at::Tensor g = logp.exp().mul_(1.0 / n).scatter_add(1, target, at::full({n, 1}, -1.0 / n, logp.options()));
    gw = x.t().mm(g).t();
    gb = g.sum(0);
    loss = -logp.gather(1, target).sum().item<double>();
  });
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, wrapTensor(env, gw));
  out.Set(1u, wrapTensor(env, gb));
  out.Set(2u, Napi::Number::New(env, loss));
  return out;
}

// --- SGD (and LARC's scaled gradients) in one pass over each parameter ---------------------------------------------
//
// torch.optim.SGD as _foreach_* operators reads and writes every parameter-sized tensor once per operator: with LARC
// in front (its wd * p folded into the gradient, then the gradient scaled) 13 reads and writes of a parameter-sized
// tensor per parameter after LARC's two norms; this reads the gradient, the parameter and its momentum buffer once and
// writes the buffer and the parameter once (5). The
// arithmetic is ATen's vectorized kernels', in their order: d = fma(p, wd, g); d *= scale; buf = fma(d, 1 - dampening,
// buf * momentum) (the first step: buf = d); nesterov: d = fma(buf, momentum, d), else d = buf; p = fma(d, -lr, p).

struct SgdArgs {
  float lr, momentum, damp1, wd;  // damp1: 1 - dampening, as JS computes it before ATen takes it as a float
  bool nesterov;
};

// One element range [b, e) of flat float arrays; buf null: no momentum; fresh: buf is written, not read.
template <bool Fma>
inline void sgdScalar(const SgdArgs& a, float scale, bool scaled, const float* g, float* p, float* buf, bool fresh, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    float d = a.wd != 0 ? (Fma ? std::fmaf(p[i], a.wd, g[i]) : g[i] + a.wd * p[i]) : g[i];
    if (scaled) d *= scale;
    if (buf != nullptr) {
      float bv = fresh ? d : (Fma ? std::fmaf(d, a.damp1, buf[i] * a.momentum) : buf[i] * a.momentum + a.damp1 * d);
      buf[i] = bv;
      d = a.nesterov ? (Fma ? std::fmaf(bv, a.momentum, d) : d + a.momentum * bv) : bv;
    }
    p[i] = Fma ? std::fmaf(d, -a.lr, p[i]) : p[i] - a.lr * d;
  }
}

__attribute__((target("avx2,fma"))) void sgdAvx2(const SgdArgs& a, float scale, bool scaled, const float* g, float* p, float* buf,
                                                 bool fresh, int64_t b, int64_t e) {
  const __m256 wd = _mm256_set1_ps(a.wd), sc = _mm256_set1_ps(scale), m = _mm256_set1_ps(a.momentum);
  const __m256 damp = _mm256_set1_ps(a.damp1), nlr = _mm256_set1_ps(-a.lr);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    __m256 pv = _mm256_loadu_ps(p + i);
    __m256 d = _mm256_loadu_ps(g + i);
    if (a.wd != 0) d = _mm256_fmadd_ps(pv, wd, d);
    if (scaled) d = _mm256_mul_ps(d, sc);
    if (buf != nullptr) {
      __m256 bv = fresh ? d : _mm256_fmadd_ps(d, damp, _mm256_mul_ps(_mm256_loadu_ps(buf + i), m));
      _mm256_storeu_ps(buf + i, bv);
      d = a.nesterov ? _mm256_fmadd_ps(bv, m, d) : bv;
    }
    _mm256_storeu_ps(p + i, _mm256_fmadd_ps(d, nlr, pv));
  }
  sgdScalar<true>(a, scale, scaled, g, p, buf, fresh, i, e);
}

// Dense, non-overlapping, float32, all with the same strides: the three can be walked as flat arrays.
bool flatTogether(const at::Tensor& p, const at::Tensor& g, const at::Tensor* buf) {
  auto ok = [&](const at::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == c10::kStrided && t.is_non_overlapping_and_dense() &&
           t.sizes().equals(p.sizes()) && t.strides().equals(p.strides()) && t.storage_offset() >= 0;
  };
  return ok(p) && ok(g) && (buf == nullptr || ok(*buf));
}

// sgdStep(params, grads, bufs, scales, lr, momentum, dampening, weightDecay, nesterov) -> bufs: every parameter
// stepped in place; bufs[i] null with momentum: a new buffer (the first step), returned in its place.
Napi::Value sgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto params = info[0].As<Napi::Array>();
  auto grads = info[1].As<Napi::Array>();
  auto bufs = info[2].As<Napi::Array>();
  bool scaled = info[3].IsArray();
  auto scales = scaled ? info[3].As<Napi::Array>() : Napi::Array::New(env, 0);
  const double lr = info[4].As<Napi::Number>().DoubleValue(), momentum = info[5].As<Napi::Number>().DoubleValue();
  const double dampening = info[6].As<Napi::Number>().DoubleValue(), wd = info[7].As<Napi::Number>().DoubleValue();
  SgdArgs a{static_cast<float>(lr), static_cast<float>(momentum), static_cast<float>(1 - dampening), static_cast<float>(wd),
            info[8].As<Napi::Boolean>().Value()};
  const uint32_t n = params.Length();
  if (grads.Length() != n || bufs.Length() != n || (scaled && scales.Length() != n)) {
    throw Napi::TypeError::New(env, "sgdStep: params, grads, bufs (and scales) must have one entry per parameter");
  }
  std::vector<at::Tensor> ps, gs, bs;
  std::vector<float> sc;
  std::vector<bool> fresh;
  for (uint32_t i = 0; i < n; ++i) {
    ps.push_back(unwrapTensor(env, params.Get(i), "param"));
    gs.push_back(unwrapTensor(env, grads.Get(i), "grad"));
    Napi::Value b = bufs.Get(i);
    bs.push_back(b.IsNull() || b.IsUndefined() ? at::Tensor() : unwrapTensor(env, b, "buf"));
    sc.push_back(scaled ? scales.Get(i).As<Napi::Number>().FloatValue() : 1.0f);
  }
  const bool useMomentum = momentum != 0;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  guarded(env, "sgdStep", [&] {
    at::NoGradGuard noGrad;
    struct Chunk { uint32_t t; int64_t b, e; };
    std::vector<Chunk> chunks;
    constexpr int64_t kChunk = 1 << 16;
    for (uint32_t i = 0; i < n; ++i) {
      fresh.push_back(useMomentum && !bs[i].defined());
      if (fresh[i]) bs[i] = at::empty_like(gs[i], at::MemoryFormat::Preserve);
      if (flatTogether(ps[i], gs[i], useMomentum ? &bs[i] : nullptr)) {
        for (int64_t b = 0; b < ps[i].numel(); b += kChunk) chunks.push_back({i, b, std::min<int64_t>(b + kChunk, ps[i].numel())});
        continue;
      }
      // anything else (another dtype, layouts that differ): ATen's operators, the same steps
      at::Tensor d = wd != 0 ? gs[i].add(ps[i], wd) : gs[i];
      if (scaled) d = d.mul(sc[i]);
      if (useMomentum) {
        if (fresh[i]) bs[i].copy_(d);
        else bs[i].mul_(momentum).add_(d, 1 - dampening);
        d = a.nesterov ? d.add(bs[i], momentum) : bs[i];
      }
      ps[i].add_(d, -lr);
    }
    at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const Chunk& k = chunks[c];
        float* p = ps[k.t].data_ptr<float>();
        const float* g = gs[k.t].data_ptr<float>();
        float* buf = useMomentum ? bs[k.t].data_ptr<float>() : nullptr;
        if (avx2) sgdAvx2(a, sc[k.t], scaled, g, p, buf, fresh[k.t], k.b, k.e);
        else sgdScalar<false>(a, sc[k.t], scaled, g, p, buf, fresh[k.t], k.b, k.e);
      }
    });
    for (const Chunk& k : chunks) {
      if (k.b != 0) continue;
      ps[k.t].unsafeGetTensorImpl()->bump_version();
      if (useMomentum) bs[k.t].unsafeGetTensorImpl()->bump_version();
    }
  });
  auto out = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; ++i) {
    if (fresh.size() > i && fresh[i]) out.Set(i, wrapTensor(env, bs[i]));
    else out.Set(i, bufs.Get(i));
  }
  return out;
}

}  // namespace

void initFused(Napi::Env env, Napi::Object exports) {
  exports.Set("linearCrossEntropyGrad", Napi::Function::New<exported<linearCrossEntropyGrad>>(env, "linearCrossEntropyGrad"));
  exports.Set("sgdStep", Napi::Function::New<exported<sgdStep>>(env, "sgdStep"));
}

}  // namespace swav
