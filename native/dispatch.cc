// The generic operator call: any registered operator, looked up once by name and called boxed through the
// c10 dispatcher, with arguments converted by its schema. Autograd and autocast apply as for any other caller.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <algorithm>
#include <sstream>
#include <unordered_map>

#include "convert.h"
#include "errors.h"

namespace swav {
namespace {

struct Op {
  c10::OperatorHandle handle;
  std::string name;  // "aten::conv2d" or "aten::add.Tensor", for messages
};

std::vector<Op>& ops() {
  static std::vector<Op> v;
  return v;
}
std::unordered_map<std::string, int>& opIds() {
  static std::unordered_map<std::string, int> m;
  return m;
}

std::string qualified(const c10::OperatorName& n) {
  return n.overload_name.empty() ? n.name : n.name + "." + n.overload_name;
}

const Op& opAt(Napi::Env env, const Napi::Value& id) {
  if (!id.IsNumber()) throw Napi::TypeError::New(env, "operator id must be a number");
  int i = id.As<Napi::Number>().Int32Value();
  if (i < 0 || static_cast<size_t>(i) >= ops().size()) throw Napi::RangeError::New(env, "bad operator id");
  return ops()[i];
}

// opId(name, overload) -> id; throws for an unknown operator.
Napi::Value opId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  std::string key = name + "." + overload;
  auto it = opIds().find(key);
  if (it != opIds().end()) return Napi::Number::New(env, it->second);
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) {
    throw Napi::Error::New(env, "unknown operator " + name + (overload.empty() ? "" : "." + overload));
  }
  int id = static_cast<int>(ops().size());
  ops().push_back({*handle, qualified(handle->operator_name())});
  opIds()[key] = id;
  return Napi::Number::New(env, id);
}

// overloads(name) -> the overload names registered for `name`, the default ("") first.
Napi::Value overloads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static std::unordered_map<std::string, std::vector<std::string>> byName;
  if (byName.empty()) {
    for (const auto& n : c10::Dispatcher::singleton().getAllOpNames()) byName[n.name].push_back(n.overload_name);
    // The default overload first and out= variants last, as PyTorch's binding prefers.
    auto rank = [](const std::string& s) { return s.empty() ? 0 : (s == "out" || (s.size() > 4 && s.compare(s.size() - 4, 4, "_out") == 0)) ? 2 : 1; };
    for (auto& kv : byName) {
      std::stable_sort(kv.second.begin(), kv.second.end(), [&](auto& a, auto& b) { return rank(a) < rank(b); });
    }
  }
  auto it = byName.find(info[0].As<Napi::String>().Utf8Value());
  auto arr = Napi::Array::New(env);
  if (it != byName.end()) {
    for (size_t i = 0; i < it->second.size(); i++) arr.Set(static_cast<uint32_t>(i), it->second[i]);
  }
  return arr;
}

// allOpNames() -> every registered "ns::name.overload" (for discovery and docs).
Napi::Value allOpNames(const Napi::CallbackInfo& info) {
  auto names = c10::Dispatcher::singleton().getAllOpNames();
  auto arr = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); i++) arr.Set(static_cast<uint32_t>(i), qualified(names[i]));
  return arr;
}

Napi::Value schema(const Napi::CallbackInfo& info) {
  std::ostringstream s;
  s << opAt(info.Env(), info[0]).handle.schema();
  return Napi::String::New(info.Env(), s.str());
}

using Values = std::vector<Napi::Value>;

// The value for each schema argument: positional first, then `kwargs` by name; undefined where neither
// gives one. Returns false when a keyword matches no argument or there are too many positional values.
bool gather(Napi::Env env, const Op& op, const Values& positional, const Napi::Object* kwargs, Values& out) {
  const auto& params = op.handle.schema().arguments();
  if (positional.size() > params.size()) return false;
  uint32_t used = 0;
  out.clear();
  for (size_t i = 0; i < params.size(); i++) {
    Napi::Value v = i < positional.size() ? positional[i] : env.Undefined();
    if (v.IsUndefined() && kwargs && kwargs->Has(params[i].name())) {
      v = kwargs->Get(params[i].name());
      used++;
    }
    out.push_back(v);
  }
  return !kwargs || used == kwargs->GetPropertyNames().Length();
}

// Throws the reason gather() refused.
[[noreturn]] void refuse(Napi::Env env, const Op& op, const Values& positional, const Napi::Object* kwargs) {
  const auto& params = op.handle.schema().arguments();
  if (positional.size() > params.size()) {
    throw Napi::TypeError::New(env, op.name + ": takes " + std::to_string(params.size()) + " arguments, got " +
                                        std::to_string(positional.size()));
  }
  auto keys = kwargs->GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); k++) {
    std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
    bool known = false;
    for (const auto& p : params) known = known || p.name() == key;
    if (!known) throw Napi::TypeError::New(env, op.name + ": unexpected keyword argument '" + key + "'");
  }
  throw Napi::TypeError::New(env, op.name + ": an argument is given both by position and by name");
}

bool acceptsAll(Napi::Env env, const Op& op, const Values& values) {
  const auto& params = op.handle.schema().arguments();
  for (size_t i = 0; i < params.size(); i++) {
    const auto& p = params[i];
    if (values[i].IsUndefined()) {
      if (p.default_value() || p.real_type()->kind() == c10::TypeKind::OptionalType) continue;
      return false;
    }
    if (!accepts(env, values[i], p)) return false;
  }
  return true;
}

// Converts the gathered values (undefined takes the default), calls, converts the results back unless the
// caller discards them.
Napi::Value invoke(Napi::Env env, const Op& op, const Values& values, bool discard = false) {
  const auto& params = op.handle.schema().arguments();
  torch::jit::Stack stack;
  stack.reserve(params.size());
  for (size_t i = 0; i < params.size(); i++) {
    const auto& p = params[i];
    if (values[i].IsUndefined() && p.default_value()) {
      stack.push_back(*p.default_value());
    } else if (values[i].IsUndefined() && p.real_type()->kind() != c10::TypeKind::OptionalType) {
      throw Napi::TypeError::New(env, op.name + ": missing argument '" + p.name() + "'");
    } else {
      stack.push_back(toIValue(env, values[i], p, op.name));
    }
  }
  guarded(env, op.name, [&] { op.handle.callBoxed(&stack); });
  if (discard || stack.empty()) return env.Undefined();
  if (stack.size() == 1) return fromIValue(env, stack[0]);
  auto arr = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) arr.Set(static_cast<uint32_t>(i), fromIValue(env, stack[i]));
  return arr;
}

Napi::Value callPositional(const Napi::CallbackInfo& info, bool discard) {
  Napi::Env env = info.Env();
  const Op& op = opAt(env, info[0]);
  Values positional, values;
  positional.reserve(info.Length());
  for (size_t i = 1; i < info.Length(); i++) positional.push_back(info[i]);
  if (!gather(env, op, positional, nullptr, values)) refuse(env, op, positional, nullptr);
  return invoke(env, op, values, discard);
}

// call(id, ...args): positional arguments; undefined takes the default. The hot path of every typed op.
Napi::Value call(const Napi::CallbackInfo& info) { return callPositional(info, false); }

// run(id, ...args): as call, for in-place operators whose result the caller already holds.
Napi::Value run(const Napi::CallbackInfo& info) { return callPositional(info, true); }

// callResolved(ids, args, kwargs?): the first overload whose schema accepts the arguments, as PyTorch's
// Python binding picks one; with a single id, its own error; with several, one listing the candidates.
Napi::Value callResolved(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = info[0].As<Napi::Array>();
  auto args = info[1].As<Napi::Array>();
  Napi::Object kwargsObj;
  const Napi::Object* kwargs = nullptr;
  if (info[2].IsObject()) {
    kwargsObj = info[2].As<Napi::Object>();
    kwargs = &kwargsObj;
  }
  Values positional, values;
  for (uint32_t i = 0; i < args.Length(); i++) positional.push_back(args.Get(i));
  if (ids.Length() == 1) {
    const Op& op = opAt(env, ids.Get(0u));
    if (!gather(env, op, positional, kwargs, values)) refuse(env, op, positional, kwargs);
    return invoke(env, op, values);
  }
  std::ostringstream candidates;
  for (uint32_t k = 0; k < ids.Length(); k++) {
    const Op& op = opAt(env, ids.Get(k));
    if (gather(env, op, positional, kwargs, values) && acceptsAll(env, op, values)) return invoke(env, op, values);
    candidates << "\n  " << op.handle.schema();
  }
  throw Napi::TypeError::New(env, "no overload accepts these arguments; candidates:" + candidates.str());
}

}  // namespace

void initDispatch(Napi::Env env, Napi::Object exports) {
  exports.Set("opId", Napi::Function::New<exported<opId>>(env, "opId"));
  exports.Set("overloads", Napi::Function::New<exported<overloads>>(env, "overloads"));
  exports.Set("allOpNames", Napi::Function::New<exported<allOpNames>>(env, "allOpNames"));
  exports.Set("schema", Napi::Function::New<exported<schema>>(env, "schema"));
  exports.Set("call", Napi::Function::New<exported<call>>(env, "call"));
  exports.Set("run", Napi::Function::New<exported<run>>(env, "run"));
  exports.Set("callResolved", Napi::Function::New<exported<callResolved>>(env, "callResolved"));
}

}  // namespace swav
