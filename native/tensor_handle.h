// A JS tensor handle: one napi External that owns exactly one at::Tensor reference.
#pragma once
#include <ATen/core/Tensor.h>
#include <napi.h>

namespace swav {

// Wraps `t` in a new handle (an undefined tensor becomes null).
Napi::Value wrapTensor(Napi::Env env, at::Tensor t);

// True when `v` is one of our handles (live or disposed).
bool isTensorHandle(Napi::Env env, const Napi::Value& v);

// The tensor behind a handle; throws a JS TypeError when `v` is not a handle, or when it was disposed.
const at::Tensor& unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what = "tensor");

// The tensor behind a handle, or nullptr when it was disposed; throws a TypeError when `v` is not a handle.
const at::Tensor* tensorOrNull(Napi::Env env, const Napi::Value& v, const char* what);

void initTensorHandle(Napi::Env env, Napi::Object exports);

}  // namespace swav
