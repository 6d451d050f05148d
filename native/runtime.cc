// Process-wide engine state: threads, seeds, devices, grad mode, autocast, and the autograd engine.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/version.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include "convert.h"
#include "errors.h"
#include "tensor_handle.h"

namespace swav {
namespace {

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: need at least 1 thread");
  at::set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  double seed = info[0].As<Napi::Number>().DoubleValue();
  if (!(seed >= 0) || seed > 9007199254740991.0) throw Napi::RangeError::New(info.Env(), "manualSeed: seed must be a non-negative integer");
  at::manual_seed(static_cast<uint64_t>(seed));
  return info.Env().Undefined();
}

// The CPU generator's state as a uint8 tensor, and back: what checkpoints save to resume exactly.
Napi::Value getRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return wrapTensor(info.Env(), gen.get_state());
}

Napi::Value setRngState(const Napi::CallbackInfo& info) {
  const at::Tensor& state = unwrapTensor(info.Env(), info[0], "setRngState");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return info.Env().Undefined();
}

Napi::Value cudaIsAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::hasCUDA());
}

Napi::Value cudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(at::hasCUDA() ? at::getNumGPUs() : 0));
}

// setGradEnabled(on) -> the previous mode.
Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), prev);
}

Napi::Value isGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

// setAutocast(device: 'cpu'|'cuda', enabled, dtype, phase?: 'enter'|'exit') -> [previous enabled, previous dtype].
// Leaving the outermost autocast region clears its cast cache, as torch.autocast's __exit__ does: with a phase, by
// its nesting count (an inner region with autocast off keeps the outer one's cached bf16 weights); without one,
// whenever autocast ends up off on both devices.
Napi::Value setAutocast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool cuda = info[0].As<Napi::String>().Utf8Value() == "cuda";
  bool enabled = info[1].As<Napi::Boolean>().Value();
  auto prev = Napi::Array::New(env, 2);
  prev.Set(0u, Napi::Boolean::New(env, cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled()));
  prev.Set(1u, Napi::String::New(env, scalarTypeName(cuda ? at::autocast::get_autocast_gpu_dtype()
                                                             : at::autocast::get_autocast_cpu_dtype())));
  auto dtype = parseScalarType(env, info[2]);
  if (cuda) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  std::string phase = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  if (phase == "enter") {
    at::autocast::increment_nesting();
  } else if (phase == "exit") {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  } else if (!at::autocast::is_enabled() && !at::autocast::is_cpu_enabled()) {
    at::autocast::clear_cache();
  }
  return prev;
}

// autocastState(device) -> [enabled, dtype].
Napi::Value autocastState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool cuda = info[0].As<Napi::String>().Utf8Value() == "cuda";
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Boolean::New(env, cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled()));
  out.Set(1u, Napi::String::New(env, scalarTypeName(cuda ? at::autocast::get_autocast_gpu_dtype()
                                                            : at::autocast::get_autocast_cpu_dtype())));
  return out;
}

std::vector<at::Tensor> tensorList(Napi::Env env, const Napi::Value& v, const char* what) {
  std::vector<at::Tensor> out;
  if (v.IsNull() || v.IsUndefined()) return out;
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(unwrapTensor(env, arr.Get(i), what));
  return out;
}

// backward(tensors, grads|null, retainGraph)
Napi::Value backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto tensors = tensorList(env, info[0], "backward");
  auto grads = tensorList(env, info[1], "backward gradient");
  c10::optional<bool> retain;
  if (info[2].IsBoolean()) retain = info[2].As<Napi::Boolean>().Value();
  guarded(env, "backward", [&] { torch::autograd::backward(tensors, grads, retain); });
  return env.Undefined();
}

// grad(h) -> the accumulated gradient or null.
Napi::Value grad(const Napi::CallbackInfo& info) {
  return wrapTensor(info.Env(), unwrapTensor(info.Env(), info[0]).grad());
}

// setGrad(h, g|null): null drops it, as `p.grad = None`.
Napi::Value setGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = unwrapTensor(env, info[0]);
  at::Tensor g = info[1].IsNull() || info[1].IsUndefined() ? at::Tensor() : unwrapTensor(env, info[1], "setGrad");
  guarded(env, "setGrad", [&] { t.mutable_grad() = g; });
  return env.Undefined();
}

// grads(hs) -> each tensor's gradient or null: one call for a whole parameter list.
Napi::Value grads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto arr = info[0].As<Napi::Array>();
  auto out = Napi::Array::New(env, arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out.Set(i, wrapTensor(env, unwrapTensor(env, arr.Get(i), "grads").grad()));
  return out;
}

// clearGrads(hs): every gradient set to None, as zero_grad(set_to_none=True).
Napi::Value clearGrads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) unwrapTensor(env, arr.Get(i), "clearGrads").mutable_grad() = at::Tensor();
  return env.Undefined();
}

Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = unwrapTensor(env, info[0]);
  guarded(env, "requiresGrad_", [&] { t.set_requires_grad(info[1].As<Napi::Boolean>().Value()); });
  return env.Undefined();
}

Napi::Value isLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrapTensor(info.Env(), info[0]).is_leaf());
}

Napi::Value gradFn(const Napi::CallbackInfo& info) {
  const auto& fn = unwrapTensor(info.Env(), info[0]).grad_fn();
  if (!fn) return info.Env().Null();
  return Napi::String::New(info.Env(), fn->name());
}

Napi::Value version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

Napi::Value configShow(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::show_config());
}

}  // namespace

void initRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New<exported<setNumThreads>>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<exported<getNumThreads>>(env, "getNumThreads"));
  exports.Set("manualSeed", Napi::Function::New<exported<manualSeed>>(env, "manualSeed"));
  exports.Set("getRngState", Napi::Function::New<exported<getRngState>>(env, "getRngState"));
  exports.Set("setRngState", Napi::Function::New<exported<setRngState>>(env, "setRngState"));
  exports.Set("cudaIsAvailable", Napi::Function::New<exported<cudaIsAvailable>>(env, "cudaIsAvailable"));
  exports.Set("cudaDeviceCount", Napi::Function::New<exported<cudaDeviceCount>>(env, "cudaDeviceCount"));
  exports.Set("setGradEnabled", Napi::Function::New<exported<setGradEnabled>>(env, "setGradEnabled"));
  exports.Set("isGradEnabled", Napi::Function::New<exported<isGradEnabled>>(env, "isGradEnabled"));
  exports.Set("setAutocast", Napi::Function::New<exported<setAutocast>>(env, "setAutocast"));
  exports.Set("autocastState", Napi::Function::New<exported<autocastState>>(env, "autocastState"));
  exports.Set("backward", Napi::Function::New<exported<backward>>(env, "backward"));
  exports.Set("grad", Napi::Function::New<exported<grad>>(env, "grad"));
  exports.Set("setGrad", Napi::Function::New<exported<setGrad>>(env, "setGrad"));
  exports.Set("grads", Napi::Function::New<exported<grads>>(env, "grads"));
  exports.Set("clearGrads", Napi::Function::New<exported<clearGrads>>(env, "clearGrads"));
  exports.Set("setRequiresGrad", Napi::Function::New<exported<setRequiresGrad>>(env, "setRequiresGrad"));
  exports.Set("isLeaf", Napi::Function::New<exported<isLeaf>>(env, "isLeaf"));
  exports.Set("gradFn", Napi::Function::New<exported<gradFn>>(env, "gradFn"));
  exports.Set("version", Napi::Function::New<exported<version>>(env, "version"));
  exports.Set("configShow", Napi::Function::New<exported<configShow>>(env, "configShow"));
}

}  // namespace swav
