// Tensor data in and out of JS memory, and the metadata the TS Tensor reads (shape, dtype, device, ...).
#include <ATen/ATen.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "convert.h"
#include "errors.h"
#include "tensor_handle.h"

namespace swav {
namespace {

std::vector<int64_t> shapeArg(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "shape must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> shape(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    double d = arr.Get(i).As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d))) {
      throw Napi::RangeError::New(env, "shape entries must be non-negative integers");
    }
    shape[i] = static_cast<int64_t>(d);
  }
  return shape;
}

// fromBytes(view: ArrayBufferView, shape, dtype) -> a new CPU tensor holding a copy of the bytes.
Napi::Value fromBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() && !info[0].IsDataView()) {
    throw Napi::TypeError::New(env, "fromBytes expects a TypedArray or Buffer");
  }
  auto shape = shapeArg(env, info[1]);
  auto dtype = parseScalarType(env, info[2]);
  const uint8_t* src;
  size_t bytes;
  if (info[0].IsTypedArray()) {
    auto ta = info[0].As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    bytes = ta.ByteLength();
  } else {
    auto dv = info[0].As<Napi::DataView>();
    src = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    bytes = dv.ByteLength();
  }
  return guarded(env, "fromBytes", [&] {
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    const size_t need = static_cast<size_t>(t.numel()) * t.element_size();
    if (need != bytes) {
      throw Napi::RangeError::New(env, "fromBytes: shape [" + c10::Join(", ", shape) + "] of " +
                                           scalarTypeName(dtype) + " needs " + std::to_string(need) +
                                           " bytes, the buffer has " + std::to_string(bytes));
    }
    if (need) std::memcpy(t.data_ptr(), src, need);
    return wrapTensor(env, std::move(t));
  });
}

// toBytes(h) -> an ArrayBuffer with the tensor's elements, row-major, in its own dtype.
Napi::Value toBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor t = unwrapTensor(env, info[0]);
  return guarded(env, "toBytes", [&] {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    auto buf = Napi::ArrayBuffer::New(env, n);
    if (n) std::memcpy(buf.Data(), c.data_ptr(), n);
    return buf;
  });
}

// fromFile(path, offset, byteLength, dtype) -> a 1-d CPU tensor read straight from the file into its memory
// (checkpoints load without a second copy in JS memory).
Napi::Value fromFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  double offset = info[1].As<Napi::Number>().DoubleValue();
  double length = info[2].As<Napi::Number>().DoubleValue();
  auto dtype = parseScalarType(env, info[3]);
  const size_t item = c10::elementSize(dtype);
  if (!(offset >= 0) || !(length >= 0) || static_cast<size_t>(length) % item != 0) {
    throw Napi::RangeError::New(env, "fromFile: bad offset or length for " + path);
  }
  struct File {
    int fd;
    ~File() { if (fd >= 0) close(fd); }
  } file{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) throw Napi::Error::New(env, "fromFile: cannot open " + path + ": " + std::strerror(errno));
  return guarded(env, "fromFile", [&] {
      at::Tensor t = at::empty({static_cast<int64_t>(length / item)}, at::TensorOptions().dtype(dtype));
      auto* dst = static_cast<char*>(t.data_ptr());
      size_t done = 0;
      const size_t total = static_cast<size_t>(length);
      while (done < total) {
        ssize_t n = pread(file.fd, dst + done, total - done, static_cast<off_t>(offset) + done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          throw Napi::Error::New(env, "fromFile: " + path + " ends before the data it describes (" +
                                          std::to_string(static_cast<size_t>(offset) + total) + " bytes needed)");
        }
        done += static_cast<size_t>(n);
      }
      return wrapTensor(env, std::move(t));
  });
}

// storageBytes(h) -> an ArrayBuffer with all of the tensor's storage (what a checkpoint stores for views).
Napi::Value storageBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = unwrapTensor(env, info[0]);
  return guarded(env, "storageBytes", [&] {
    const auto& st = t.storage();
    const size_t n = st.nbytes();
    auto buf = Napi::ArrayBuffer::New(env, n);
    if (n == 0) return buf;
    if (t.device().is_cpu()) {
      std::memcpy(buf.Data(), st.data(), n);
    } else {
      at::Tensor whole = at::empty({0}, t.options().dtype(at::kByte)).set_(st, 0, {static_cast<int64_t>(n)}, {1});
      std::memcpy(buf.Data(), whole.cpu().data_ptr(), n);
    }
    return buf;
  });
}

Napi::Value shape(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrapTensor(info.Env(), info[0]);
  auto sizes = t.sizes();
  auto arr = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) arr.Set(static_cast<uint32_t>(i), static_cast<double>(sizes[i]));
  return arr;
}

Napi::Value strides(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrapTensor(info.Env(), info[0]);
  auto st = t.strides();
  auto arr = Napi::Array::New(info.Env(), st.size());
  for (size_t i = 0; i < st.size(); i++) arr.Set(static_cast<uint32_t>(i), static_cast<double>(st[i]));
  return arr;
}

Napi::Value dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), scalarTypeName(unwrapTensor(info.Env(), info[0]).scalar_type()));
}

Napi::Value device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), unwrapTensor(info.Env(), info[0]).device().str());
}

Napi::Value dim(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(unwrapTensor(info.Env(), info[0]).dim()));
}

Napi::Value numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(unwrapTensor(info.Env(), info[0]).numel()));
}

Napi::Value storageOffset(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(unwrapTensor(info.Env(), info[0]).storage_offset()));
}

// storage(h) -> [an id shared by tensors viewing the same storage, the storage's size in bytes].
Napi::Value storage(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrapTensor(info.Env(), info[0]);
  auto arr = Napi::Array::New(info.Env(), 2);
  const auto* impl = t.storage().unsafeGetStorageImpl();
  arr.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(impl))));
  arr.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(t.storage().nbytes())));
  return arr;
}

Napi::Value isContiguous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = unwrapTensor(env, info[0]);
  auto format = info[1].IsString() && info[1].As<Napi::String>().Utf8Value() == "channelsLast"
                    ? at::MemoryFormat::ChannelsLast
                    : at::MemoryFormat::Contiguous;
  return Napi::Boolean::New(env, t.is_contiguous(format));
}

Napi::Value requiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrapTensor(info.Env(), info[0]).requires_grad());
}

Napi::Value item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = unwrapTensor(env, info[0]);
  return guarded(env, "item", [&]() -> Napi::Value {
    c10::Scalar s = t.item();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    return Napi::Number::New(env, s.toDouble());
  });
}

}  // namespace

void initData(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBytes", Napi::Function::New<exported<fromBytes>>(env, "fromBytes"));
  exports.Set("toBytes", Napi::Function::New<exported<toBytes>>(env, "toBytes"));
  exports.Set("fromFile", Napi::Function::New<exported<fromFile>>(env, "fromFile"));
  exports.Set("storageBytes", Napi::Function::New<exported<storageBytes>>(env, "storageBytes"));
  exports.Set("shape", Napi::Function::New<exported<shape>>(env, "shape"));
  exports.Set("strides", Napi::Function::New<exported<strides>>(env, "strides"));
  exports.Set("dtype", Napi::Function::New<exported<dtype>>(env, "dtype"));
  exports.Set("device", Napi::Function::New<exported<device>>(env, "device"));
  exports.Set("dim", Napi::Function::New<exported<dim>>(env, "dim"));
  exports.Set("numel", Napi::Function::New<exported<numel>>(env, "numel"));
  exports.Set("storageOffset", Napi::Function::New<exported<storageOffset>>(env, "storageOffset"));
  exports.Set("storage", Napi::Function::New<exported<storage>>(env, "storage"));
  exports.Set("isContiguous", Napi::Function::New<exported<isContiguous>>(env, "isContiguous"));
  exports.Set("requiresGrad", Napi::Function::New<exported<requiresGrad>>(env, "requiresGrad"));
  exports.Set("item", Napi::Function::New<exported<item>>(env, "item"));
}

}  // namespace swav
