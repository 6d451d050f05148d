#include "convert.h"

#include <ATen/core/jit_type.h>
#include <c10/core/Device.h>

#include <cmath>
#include <cstring>

#include "tensor_handle.h"

namespace swav {
namespace {

struct DtypeName {
  const char* name;
  c10::ScalarType type;
};
// The first name of each type is the one reported back to JS.
const DtypeName kDtypes[] = {
    {"float32", c10::kFloat},   {"float", c10::kFloat},     {"float64", c10::kDouble}, {"double", c10::kDouble},
    {"float16", c10::kHalf},    {"half", c10::kHalf},       {"bfloat16", c10::kBFloat16},
    {"int64", c10::kLong},      {"long", c10::kLong},       {"int32", c10::kInt},      {"int", c10::kInt},
    {"int16", c10::kShort},     {"int8", c10::kChar},       {"uint8", c10::kByte},     {"bool", c10::kBool},
    {"complex64", c10::kComplexFloat}, {"complex128", c10::kComplexDouble},
};

struct FormatName {
  const char* name;
  c10::MemoryFormat format;
};
const FormatName kFormats[] = {
    {"contiguous", c10::MemoryFormat::Contiguous},
    {"preserve", c10::MemoryFormat::Preserve},
    {"channelsLast", c10::MemoryFormat::ChannelsLast},
    {"channelsLast3d", c10::MemoryFormat::ChannelsLast3d},
};

bool isIntegral(const Napi::Value& v) {
  if (v.IsBigInt()) return true;
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return std::isfinite(d) && std::floor(d) == d;
}

int64_t toInt(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  return static_cast<int64_t>(v.As<Napi::Number>().DoubleValue());
}

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return "boolean";
  if (v.IsNumber()) return isIntegral(v) ? "integer" : "number";
  if (v.IsString()) return "string '" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsArray()) return "array";
  if (v.IsExternal()) return "Tensor";
  return "object";
}

c10::MemoryFormat parseMemoryFormat(Napi::Env env, const Napi::Value& v) {
  if (v.IsNumber()) return static_cast<c10::MemoryFormat>(v.As<Napi::Number>().Int32Value());
  std::string s = v.As<Napi::String>().Utf8Value();
  for (const auto& f : kFormats) {
    if (s == f.name) return f.format;
  }
  throw Napi::TypeError::New(env, "unknown memory format '" + s + "' (contiguous, preserve, channelsLast, channelsLast3d)");
}

const at::Tensor& argTensor(Napi::Env env, const Napi::Value& v, const c10::Argument& arg, const std::string& op) {
  const at::Tensor* t = tensorOrNull(env, v, "argument");
  if (!t) throw Napi::Error::New(env, op + ": argument '" + arg.name() + "' is a Tensor used after dispose()");
  return *t;
}

bool acceptsType(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, c10::optional<int32_t> n) {
  using K = c10::TypeKind;
  switch (type->kind()) {
    case K::TensorType:
      return isTensorHandle(env, v);
    case K::OptionalType:
      return v.IsNull() || v.IsUndefined() ||
             acceptsType(env, v, type->expectRef<c10::OptionalType>().getElementType(), n);
    case K::IntType:
    case K::SymIntType:
      return isIntegral(v);
    case K::FloatType:
      return v.IsNumber();
    case K::BoolType:
      return v.IsBoolean();
    case K::NumberType:
      return v.IsNumber() || v.IsBoolean();
    case K::StringType:
      return v.IsString();
    case K::ScalarTypeType:
    case K::MemoryFormatType:
    case K::LayoutType:
      return v.IsString() || isIntegral(v);
    case K::DeviceObjType:
      return v.IsString();
    case K::ListType: {
      const auto& elem = type->expectRef<c10::ListType>().getElementType();
      if (!v.IsArray()) {
        // PyTorch takes a single int for int[N] (stride=1) and for int[] dims.
        return (elem->kind() == K::IntType || elem->kind() == K::SymIntType) && isIntegral(v);
      }
      auto arr = v.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); i++) {
        if (!acceptsType(env, arr.Get(i), elem, c10::nullopt)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

c10::ScalarType parseScalarType(Napi::Env env, const Napi::Value& v) {
  if (v.IsNumber()) return static_cast<c10::ScalarType>(v.As<Napi::Number>().Int32Value());
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    for (const auto& d : kDtypes) {
      if (s == d.name) return d.type;
    }
    throw Napi::TypeError::New(env, "unknown dtype '" + s + "'");
  }
  throw Napi::TypeError::New(env, "a dtype must be a string such as 'float32'");
}

const char* scalarTypeName(c10::ScalarType t) {
  for (const auto& d : kDtypes) {
    if (d.type == t) return d.name;
  }
  return c10::toString(t);
}

bool accepts(Napi::Env env, const Napi::Value& v, const c10::Argument& arg) {
  return acceptsType(env, v, arg.real_type(), arg.N());
}

c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::Argument& arg, const std::string& op) {
  if (!accepts(env, v, arg)) {
    std::string type = arg.real_type()->str();
    if (arg.N() && arg.real_type()->kind() == c10::TypeKind::ListType) {
      type = arg.real_type()->expectRef<c10::ListType>().getElementType()->str() + "[" + std::to_string(*arg.N()) + "]";
    }
    throw Napi::TypeError::New(env, op + ": argument '" + arg.name() + "' must be " + type + ", got " + describe(v));
  }
  using K = c10::TypeKind;
  c10::TypePtr type = arg.real_type();
  if (type->kind() == K::OptionalType) {
    if (v.IsNull() || v.IsUndefined()) return c10::IValue();
    type = type->expectRef<c10::OptionalType>().getElementType();
  }
  switch (type->kind()) {
    case K::TensorType:
      return argTensor(env, v, arg, op);
    case K::IntType:
    case K::SymIntType:
      return toInt(v);
    case K::FloatType:
      return v.As<Napi::Number>().DoubleValue();
    case K::BoolType:
      return v.As<Napi::Boolean>().Value();
    case K::NumberType:
      if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
      if (isIntegral(v)) return c10::Scalar(toInt(v));
      return c10::Scalar(v.As<Napi::Number>().DoubleValue());
    case K::StringType:
      return v.As<Napi::String>().Utf8Value();
    case K::ScalarTypeType:
      return static_cast<int64_t>(parseScalarType(env, v));
    case K::MemoryFormatType:
      return static_cast<int64_t>(parseMemoryFormat(env, v));
    case K::LayoutType:
      if (v.IsString() && v.As<Napi::String>().Utf8Value() != "strided") {
        throw Napi::TypeError::New(env, op + ": only the 'strided' layout is supported");
      }
      return static_cast<int64_t>(v.IsNumber() ? toInt(v) : 0);
    case K::DeviceObjType:
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case K::ListType: {
      const auto& elem = type->expectRef<c10::ListType>().getElementType();
      if (!v.IsArray()) {
        std::vector<int64_t> repeated(arg.N() ? *arg.N() : 1, toInt(v));
        return repeated;
      }
      auto arr = v.As<Napi::Array>();
      const uint32_t n = arr.Length();
      switch (elem->kind()) {
        case K::TensorType: {
          c10::List<at::Tensor> list;
          list.reserve(n);
          for (uint32_t i = 0; i < n; i++) list.push_back(argTensor(env, arr.Get(i), arg, op));
          return list;
        }
        case K::OptionalType: {
          c10::List<c10::optional<at::Tensor>> list;
          list.reserve(n);
          for (uint32_t i = 0; i < n; i++) {
            Napi::Value e = arr.Get(i);
            if (e.IsNull() || e.IsUndefined()) {
              list.push_back(c10::nullopt);
            } else {
              list.push_back(argTensor(env, e, arg, op));
            }
          }
          return list;
        }
        case K::IntType:
        case K::SymIntType: {
          std::vector<int64_t> out(n);
          for (uint32_t i = 0; i < n; i++) out[i] = toInt(arr.Get(i));
          return out;
        }
        case K::FloatType: {
          std::vector<double> out(n);
          for (uint32_t i = 0; i < n; i++) out[i] = arr.Get(i).As<Napi::Number>().DoubleValue();
          return out;
        }
        case K::NumberType: {
          c10::impl::GenericList out(c10::NumberType::get());
          out.reserve(n);
          for (uint32_t i = 0; i < n; i++) {
            Napi::Value e = arr.Get(i);
            if (e.IsBoolean()) {
              out.push_back(c10::IValue(e.As<Napi::Boolean>().Value()));
            } else if (isIntegral(e)) {
              out.push_back(c10::IValue(toInt(e)));
            } else {
              out.push_back(c10::IValue(e.As<Napi::Number>().DoubleValue()));
            }
          }
          return out;
        }
        case K::BoolType: {
          c10::List<bool> out;
          for (uint32_t i = 0; i < n; i++) out.push_back(arr.Get(i).As<Napi::Boolean>().Value());
          return out;
        }
        default:
          break;
      }
      break;
    }
    default:
      break;
  }
  throw Napi::TypeError::New(env, op + ": arguments of type " + type->str() + " are not supported");
}

Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return wrapTensor(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isDevice()) return Napi::String::New(env, v.toDevice().str());
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) arr.Set(static_cast<uint32_t>(i), fromIValue(env, elems[i]));
    return arr;
  }
  if (v.isList()) {
    auto list = v.toListRef();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) arr.Set(static_cast<uint32_t>(i), fromIValue(env, list[i]));
    return arr;
  }
  throw Napi::TypeError::New(env, "cannot convert a result of type " + v.tagKind() + " to JS");
}

}  // namespace swav
