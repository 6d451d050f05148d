// Where the time goes: libtorch's own op-level profiler (the one torch.autograd.profiler uses), aggregated per
// operator name into inclusive and self time.
#include <torch/csrc/autograd/profiler_legacy.h>

#include <map>
#include <unordered_map>

#include "errors.h"

namespace swav {
namespace {

Napi::Value profilerStart(const Napi::CallbackInfo& info) {
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  torch::autograd::profiler::enableProfilerLegacy(ProfilerConfig(ProfilerState::CPU));
  return info.Env().Undefined();
}

struct Stat {
  int64_t count = 0;
  double total = 0;
  double self = 0;
};

// profilerStop() -> [{name, count, totalUs, selfUs}], by self time, largest first.
Napi::Value profilerStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
