// JS values <-> c10::IValue, driven by an operator schema's argument types.
#pragma once
#include <ATen/core/function_schema.h>
#include <ATen/core/ivalue.h>
#include <napi.h>

#include <string>

namespace swav {

// Converts `v` for the schema argument `arg`; throws a JS TypeError naming `op` and the argument.
c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::Argument& arg, const std::string& op);

// Whether toIValue would accept `v` for `arg` (used to pick among an operator's overloads).
bool accepts(Napi::Env env, const Napi::Value& v, const c10::Argument& arg);

// Tensors become handles, tuples and lists arrays, scalars numbers or booleans, None null.
Napi::Value fromIValue(Napi::Env env, const c10::IValue& v);

// "float32" / "float" / a c10::ScalarType number -> ScalarType.
c10::ScalarType parseScalarType(Napi::Env env, const Napi::Value& v);
const char* scalarTypeName(c10::ScalarType t);

}  // namespace swav
