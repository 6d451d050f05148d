// Fused steps: work that PyTorch runs as a dozen small operators, done in one call where the per-call cost of
// reaching libtorch from JS would be most of the time (a linear head on cached features: 256 x 512 x 10 per step).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

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

}  // namespace

void initFused(Napi::Env env, Napi::Object exports) {
  exports.Set("linearCrossEntropyGrad", Napi::Function::New<exported<linearCrossEntropyGrad>>(env, "linearCrossEntropyGrad"));
}

}  // namespace swav
