#include "tensor_handle.h"

#include <atomic>

#include "errors.h"

namespace swav {
namespace {

struct TensorBox {
  at::Tensor tensor;
  bool disposed = false;
};

// Tensors whose handles are neither disposed nor collected: the figure tests assert stays flat.
std::atomic<int64_t> live{0};

// Marks our externals so that a foreign external is refused instead of reinterpreted.
const napi_type_tag kTensorTag = {0x5377415654656e73ULL, 0x6f7248616e646c65ULL};

void finalize(Napi::Env, TensorBox* box) {
  if (!box->disposed) live--;
  delete box;
}

TensorBox* boxOf(Napi::Env env, const Napi::Value& v, const char* what) {
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &kTensorTag, &tagged);
  if (!tagged) {
    throw Napi::TypeError::New(env, std::string("expected a Tensor for ") + what);
  }
  return v.As<Napi::External<TensorBox>>().Data();
}

Napi::Value dispose(const Napi::CallbackInfo& info) {
  TensorBox* box = boxOf(info.Env(), info[0], "dispose");
  if (!box->disposed) {
    box->disposed = true;
    box->tensor.reset();
    live--;
  }
  return info.Env().Undefined();
}

Napi::Value isDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), boxOf(info.Env(), info[0], "isDisposed")->disposed);
}

Napi::Value liveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(live.load()));
}

}  // namespace

Napi::Value wrapTensor(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto* box = new TensorBox{std::move(t)};
  auto ext = Napi::External<TensorBox>::New(env, box, finalize);
  napi_type_tag_object(env, ext, &kTensorTag);
  live++;
  return ext;
}

bool isTensorHandle(Napi::Env env, const Napi::Value& v) {
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &kTensorTag, &tagged);
  return tagged;
}

const at::Tensor* tensorOrNull(Napi::Env env, const Napi::Value& v, const char* what) {
  TensorBox* box = boxOf(env, v, what);
  return box->disposed ? nullptr : &box->tensor;
}

const at::Tensor& unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what) {
  TensorBox* box = boxOf(env, v, what);
  if (box->disposed) {
    throw Napi::Error::New(env, std::string("Tensor used after dispose() (as ") + what + ")");
  }
  return box->tensor;
}

void initTensorHandle(Napi::Env env, Napi::Object exports) {
  exports.Set("dispose", Napi::Function::New<exported<dispose>>(env, "dispose"));
  exports.Set("isDisposed", Napi::Function::New<exported<isDisposed>>(env, "isDisposed"));
  exports.Set("liveTensors", Napi::Function::New<exported<liveTensors>>(env, "liveTensors"));
}

}  // namespace swav
