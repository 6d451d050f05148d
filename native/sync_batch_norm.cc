// SyncBatchNorm's autograd function (torch.nn.SyncBatchNorm in training mode), on CPU over Gloo: the batch statistics
// of every process in the group. PyTorch's batch_norm_stats and friends are CUDA-only in this libtorch, so the math
// is written out here with the same structure (torch/nn/modules/_functions.py):
//   forward:  each rank's per-channel mean, biased variance and count, all-gathered and combined (Chan et al.);
//             running statistics updated with the unbiased variance of the global count; y = x * scale + shift.
//   backward: each rank's sum(dy) and sum(dy * (x - mean)) all-reduced; the input gradient from the global sums,
//             the weight and bias gradients from the local ones (DDP averages those, as for any parameter).
// Statistics of half-precision inputs are computed in float32.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "dist.h"
#include "errors.h"
#include "tensor_handle.h"

namespace swav {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor accurate(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16 ? t.to(at::kFloat) : t;
}

// Every dimension but the channels (dim 1).
std::vector<int64_t> reducedDims(const at::Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
  return dims;
}

// A per-channel vector shaped to broadcast against x: [1, C, 1, ...].
at::Tensor perChannel(const at::Tensor& v, const at::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  return v.view(shape);
}

c10::intrusive_ptr<Group> groupOf(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<Group>(ctx->saved_data["group"].toCapsule());
}

struct SyncBatchNorm : torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const c10::optional<at::Tensor>& weight,
                            const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& runningMean,
                            const c10::optional<at::Tensor>& runningVar, double momentum, double eps,
                            c10::intrusive_ptr<Group> g) {
    TORCH_CHECK(x.dim() >= 2, "syncBatchNorm: expected an input of at least 2 dimensions, got ", x.sizes());
    const int64_t C = x.size(1), n = x.numel() / std::max<int64_t>(C, 1);
    const at::Tensor xs = accurate(x);
    at::Tensor mean, var;
    if (n > 0) {
      std::tie(var, mean) = at::var_mean(xs, reducedDims(x), /*unbiased=*/false, /*keepdim=*/false);
    } else {
      mean = at::zeros({C}, xs.options());
      var = at::zeros({C}, xs.options());
    }
    // [mean, var, count] of every rank, in float64 so that the counts and their products stay exact.
    const auto f64 = xs.options().dtype(at::kDouble);
    std::vector<at::Tensor> local{at::cat({mean.to(at::kDouble), var.to(at::kDouble), at::full({1}, static_cast<double>(n), f64)})};
    at::Tensor all = at::empty({g->size, 2 * C + 1}, f64);
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < g->size; r++) outs[0].push_back(all[r]);
    const std::string op = "allGather of the batch statistics";
    g->wait(g->get(op).allgather(outs, local), op);
    at::Tensor means = all.narrow(1, 0, C), vars = all.narrow(1, C, C), counts = all.narrow(1, 2 * C, 1);
    const double total = counts.sum().item<double>();
    TORCH_CHECK(total > 1, "syncBatchNorm: expected more than 1 value per channel when training, got input of size ", x.sizes(),
                " on ", g->size, " processes");
    at::Tensor gmean = (means * counts).sum(0) / total;
    at::Tensor gvar = ((vars + (means - gmean).square()) * counts).sum(0) / total;
    if (runningMean && runningMean->defined()) {
      runningMean->mul_(1 - momentum).add_(gmean.to(runningMean->scalar_type()), momentum);
    }
    if (runningVar && runningVar->defined()) {
      runningVar->mul_(1 - momentum).add_((gvar * (total / (total - 1))).to(runningVar->scalar_type()), momentum);
    }
    at::Tensor invstd = (gvar + eps).rsqrt().to(xs.scalar_type());
    gmean = gmean.to(xs.scalar_type());
    const bool affineW = weight && weight->defined(), affineB = bias && bias->defined();
    at::Tensor scale = affineW ? invstd * *weight : invstd;
    at::Tensor shift = affineB ? *bias - gmean * scale : -gmean * scale;
    ctx->save_for_backward({x, affineW ? *weight : at::Tensor(), gmean, invstd});
    ctx->saved_data["total"] = total;
    ctx->saved_data["group"] = c10::IValue::make_capsule(g);
    ctx->saved_data["inputGrad"] = x.requires_grad();
    ctx->saved_data["weightGrad"] = affineW && weight->requires_grad();
    ctx->saved_data["biasGrad"] = affineB && bias->requires_grad();
    return at::addcmul(perChannel(shift, x), x, perChannel(scale, x)).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const at::Tensor& gy = grads[0];
    variable_list out(8);
    if (!gy.defined()) return out;
    const at::Tensor xs = accurate(x), gys = accurate(gy);
    at::Tensor w = weight.defined() ? weight.to(xs.scalar_type()) : at::ones_like(mean);
    // The fused kernel's weight and bias gradients are sum(dy * (x - mean)) * invstd and sum(dy), with our mean/invstd.
    auto [unusedInput, dyXmuInvstd, sumDy] = at::native_batch_norm_backward(
        gys, xs, w, {}, {}, mean, invstd, /*train=*/true, /*eps=*/0, {false, true, true});
    if (ctx->saved_data["weightGrad"].toBool()) out[1] = dyXmuInvstd.to(weight.scalar_type());
    if (ctx->saved_data["biasGrad"].toBool()) out[2] = sumDy.to(weight.defined() ? weight.scalar_type() : sumDy.scalar_type());
    if (ctx->saved_data["inputGrad"].toBool()) {
      auto g = groupOf(ctx);
      const int64_t C = mean.size(0);
      std::vector<at::Tensor> sums{at::cat({sumDy, dyXmuInvstd / invstd})};
      const std::string op = "allReduce of syncBatchNorm's gradient sums";
      g->wait(g->get(op).allreduce(sums), op);
      const double total = ctx->saved_data["total"].toDouble();
      at::Tensor meanDy = sums[0].narrow(0, 0, C) / total, meanDyXmu = sums[0].narrow(0, C, C) / total;
      // dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))) * invstd * w = dy * a + x * b + c
      at::Tensor a = invstd * w;
      at::Tensor b = -a * invstd.square() * meanDyXmu;
      at::Tensor c = -meanDy * a - mean * b;
      out[0] = at::addcmul(perChannel(c, x), gys, perChannel(a, x)).addcmul_(xs, perChannel(b, x)).to(x.scalar_type());
    }
    return out;
  }
};

// syncBatchNorm(x, weight|null, bias|null, runningMean|null, runningVar|null, momentum, eps, group) -> y
Napi::Value syncBatchNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto opt = [&](int i, const char* what) -> c10::optional<at::Tensor> {
    if (info[i].IsNull() || info[i].IsUndefined()) return c10::nullopt;
    return unwrapTensor(env, info[i], what);
  };
  const at::Tensor& x = unwrapTensor(env, info[0], "syncBatchNorm input");
  auto weight = opt(1, "syncBatchNorm weight"), bias = opt(2, "syncBatchNorm bias");
  auto runningMean = opt(3, "syncBatchNorm runningMean"), runningVar = opt(4, "syncBatchNorm runningVar");
  const double momentum = info[5].As<Napi::Number>().DoubleValue(), eps = info[6].As<Napi::Number>().DoubleValue();
  auto g = unwrapGroup(env, info[7]);
  return guarded(env, "syncBatchNorm", [&] {
    return wrapTensor(env, SyncBatchNorm::apply(x, weight, bias, runningMean, runningVar, momentum, eps, g));
  });
}

}  // namespace

void initSyncBatchNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("syncBatchNorm", Napi::Function::New<exported<syncBatchNorm>>(env, "syncBatchNorm"));
}

}  // namespace swav
