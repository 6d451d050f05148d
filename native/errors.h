// Every C++ exception becomes a JS Error that names where it came from; nothing escapes into Node.
#pragma once
#include <c10/util/Exception.h>
#include <napi.h>

#include <string>

namespace swav {

inline Napi::Error torchError(Napi::Env env, const std::string& context, const std::string& message) {
  auto err = Napi::Error::New(env, context.empty() ? message : context + ": " + message);
  err.Set("code", Napi::String::New(env, "ERR_TORCH"));
  return err;
}

// Runs `body`, translating c10::Error and std::exception into a JS Error prefixed with `context`.
template <typename Body>
auto guarded(Napi::Env env, const std::string& context, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw torchError(env, context, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw torchError(env, context, e.what());
  } catch (...) {
    throw torchError(env, context, "unknown C++ exception");
  }
}

// An exported function whose C++ exceptions all turn into JS errors naming `name`.
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value exported(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "", [&] { return Fn(info); });
}

}  // namespace swav
