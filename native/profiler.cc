// Where the time goes: libtorch's own op-level profiler (the one torch.autograd.profiler uses), aggregated per
// operator name into inclusive and self time; or, with `detail`, our own RecordFunction observer, aggregated per
// operator and inputs (shapes as torch.profiler's record_shapes writes them, dtypes, and each tensor's memory
// layout: contiguous, channels_last or strided), so that a step can be matched op by op with PyTorch's profile.
// RecordFunction::inputs() asserts, in builds without NDEBUG, a flag that only a debug libtorch ever sets: read the
// inputs as a release libtorch's own observers do.
#ifndef NDEBUG
#define NDEBUG
#define SWAV_PROFILER_NDEBUG
#endif
#include <ATen/record_function.h>
#ifdef SWAV_PROFILER_NDEBUG
#undef NDEBUG
#undef SWAV_PROFILER_NDEBUG
#endif
#include <torch/csrc/autograd/profiler_legacy.h>

#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>

#include "errors.h"

namespace swav {
namespace {

struct Stat {
  int64_t count = 0;
  double total = 0;
  double self = 0;
};

// --- the detailed observer -------------------------------------------------------------------------------------

struct DetailStat {
  std::string name, shapes, dtypes, layouts;
  Stat stat;
};

struct Frame : at::ObserverContext {
  std::string name, shapes, dtypes, layouts;
  std::chrono::steady_clock::time_point start;
  double children = 0;
};

std::mutex detailMutex;
std::unordered_map<std::string, DetailStat> detailStats;
at::CallbackHandle detailHandle = 0;
bool detailOn = false;
thread_local std::vector<Frame*> detailStack;

const char* shortDtype(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "f32";
    case c10::ScalarType::BFloat16: return "bf16";
    case c10::ScalarType::Half: return "f16";
    case c10::ScalarType::Double: return "f64";
    case c10::ScalarType::Long: return "i64";
    case c10::ScalarType::Int: return "i32";
    case c10::ScalarType::Byte: return "u8";
    case c10::ScalarType::Char: return "i8";
    case c10::ScalarType::Bool: return "bool";
    default: return c10::toString(t);
  }
}

// "c": contiguous (also channels_last when the sizes make both the same), "cl": channels_last only, "s": neither.
const char* layoutOf(const at::Tensor& t) {
  if (t.layout() != c10::kStrided) return t.is_mkldnn() ? "mkldnn" : "sparse";
  if (t.is_contiguous()) return "c";
  if (t.dim() == 4 && t.is_contiguous(c10::MemoryFormat::ChannelsLast)) return "cl";
  if (t.dim() == 5 && t.is_contiguous(c10::MemoryFormat::ChannelsLast3d)) return "cl";
  return "s";
}

std::unique_ptr<at::ObserverContext> detailStart(const at::RecordFunction& fn) {
  auto frame = std::make_unique<Frame>();
  frame->name = fn.name();
  std::string& shapes = frame->shapes;
  std::string& dtypes = frame->dtypes;
  std::string& layouts = frame->layouts;
  shapes = "[";
  dtypes = "[";
  layouts = "[";
  auto inputs = fn.inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const c10::IValue& v = inputs[i];
    if (i) {
      shapes += ",";
      dtypes += ",";
      layouts += ",";
    }
    if (v.isTensor() && v.toTensor().defined()) {
      const at::Tensor& t = v.toTensor();
      shapes += "[";
      for (int64_t d = 0; d < t.dim(); ++d) {
        if (d) shapes += ",";
        shapes += std::to_string(t.sizes()[d]);
      }
      shapes += "]";
      dtypes += std::string("\"") + shortDtype(t.scalar_type()) + "\"";
      layouts += std::string("\"") + layoutOf(t) + "\"";
    } else {
      // what torch.profiler writes for an input that is no tensor: no shape, and "Scalar", "TensorList" or ""
      shapes += "[]";
      dtypes += v.isScalar() ? "\"Scalar\"" : v.isTensorList() ? "\"TensorList\"" : "\"\"";
      layouts += "\"\"";
    }
  }
  shapes += "]";
  dtypes += "]";
  layouts += "]";
  detailStack.push_back(frame.get());
  frame->start = std::chrono::steady_clock::now();
  return frame;
}

void detailEnd(const at::RecordFunction&, at::ObserverContext* ctx) {
  auto end = std::chrono::steady_clock::now();
  auto* frame = static_cast<Frame*>(ctx);
  if (frame == nullptr) return;
  // pop up to this frame (an unbalanced inner scope, if any, is dropped with it)
  while (!detailStack.empty() && detailStack.back() != frame) detailStack.pop_back();
  if (!detailStack.empty()) detailStack.pop_back();
  double us = std::chrono::duration<double, std::micro>(end - frame->start).count();
  if (!detailStack.empty()) detailStack.back()->children += us;
  std::string key = frame->name + "|" + frame->shapes + "|" + frame->dtypes + "|" + frame->layouts;
  std::lock_guard<std::mutex> lock(detailMutex);
  auto it = detailStats.find(key);
  if (it == detailStats.end()) {
    it = detailStats.emplace(key, DetailStat{frame->name, frame->shapes, frame->dtypes, frame->layouts, Stat{}}).first;
  }
  it->second.stat.count++;
  it->second.stat.total += us;
  it->second.stat.self += us - frame->children;
}

// profilerStart(detail?: boolean): libtorch's legacy profiler by op name; with detail, our observer by op and inputs.
Napi::Value profilerStart(const Napi::CallbackInfo& info) {
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  bool detail = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  if (detailOn) throw Napi::Error::New(info.Env(), "profilerStart: a profile is already running");
  if (detail) {
    {
      std::lock_guard<std::mutex> lock(detailMutex);
      detailStats.clear();
    }
    detailStack.clear();
    detailHandle = at::addThreadLocalCallback(at::RecordFunctionCallback(detailStart, detailEnd)
                                                  .needsInputs(true)
                                                  .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION,
                                                           at::RecordScope::USER_SCOPE}));
    detailOn = true;
    return info.Env().Undefined();
  }
  torch::autograd::profiler::enableProfilerLegacy(ProfilerConfig(ProfilerState::CPU));
  return info.Env().Undefined();
}

Napi::Value detailStop(Napi::Env env) {
  at::removeCallback(detailHandle);
  detailHandle = 0;
  detailOn = false;
  detailStack.clear();
  std::multimap<double, const DetailStat*> sorted;
  std::lock_guard<std::mutex> lock(detailMutex);
  for (auto& kv : detailStats) sorted.emplace(-kv.second.stat.self, &kv.second);
  auto out = Napi::Array::New(env, sorted.size());
  uint32_t i = 0;
  for (auto& kv : sorted) {
    const DetailStat& d = *kv.second;
    auto o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("count", static_cast<double>(d.stat.count));
    o.Set("totalUs", d.stat.total);
    o.Set("selfUs", d.stat.self);
    o.Set("shapes", d.shapes);
    o.Set("dtypes", d.dtypes);
    o.Set("layouts", d.layouts);
    out.Set(i++, o);
  }
  detailStats.clear();
  return out;
}

// profilerStop() -> [{name, count, totalUs, selfUs}] (with detail: also shapes, dtypes, layouts, each a JSON array),
// by self time, largest first.
Napi::Value profilerStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (detailOn) return detailStop(env);
  auto lists = torch::autograd::profiler::disableProfilerLegacy();
  std::unordered_map<std::string, Stat> stats;
  for (auto& events : lists) {
    struct Open { const torch::autograd::profiler::LegacyEvent* start; double children; };
    std::vector<Open> stack;
    for (auto& e : events) {
      if (e.kindStr() == "push") {
        stack.push_back({&e, 0});
      } else if (e.kindStr() == "pop" && !stack.empty()) {
        Open o = stack.back();
        stack.pop_back();
        double us = o.start->cpuElapsedUs(e);
        Stat& s = stats[o.start->name()];
        s.count++;
        s.total += us;
        s.self += us - o.children;
        if (!stack.empty()) stack.back().children += us;
      }
    }
  }
  std::multimap<double, std::pair<std::string, Stat>> sorted;
  for (auto& kv : stats) sorted.emplace(-kv.second.self, kv);
  auto out = Napi::Array::New(env, sorted.size());
  uint32_t i = 0;
  for (auto& kv : sorted) {
    auto o = Napi::Object::New(env);
    o.Set("name", kv.second.first);
    o.Set("count", static_cast<double>(kv.second.second.count));
    o.Set("totalUs", kv.second.second.total);
    o.Set("selfUs", kv.second.second.self);
    out.Set(i++, o);
  }
  return out;
}

}  // namespace

void initProfiler(Napi::Env env, Napi::Object exports) {
  exports.Set("profilerStart", Napi::Function::New<exported<profilerStart>>(env, "profilerStart"));
  exports.Set("profilerStop", Napi::Function::New<exported<profilerStop>>(env, "profilerStop"));
}

}  // namespace swav
