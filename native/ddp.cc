// DistributedDataParallel's gradient reducer, ours (libtorch-dev ships no c10d/reducer.hpp that compiles): the
// parameters' gradients averaged over the group in buckets whose all-reduce starts during backward, as soon as
// every gradient of the bucket has been accumulated (a post-hook on each parameter's AccumulateGrad).
//
// Buckets: parameters in reverse order (roughly the order backward produces their gradients), one dtype and device
// per bucket, the first at most `firstBucketBytes` so that communication starts early, the others `bucketCapBytes`
// (PyTorch's 1 MB and 25 MB; a bucket closes once it reaches its cap). Unlike PyTorch the assignment is not rebuilt
// from the order observed in the first iteration.
//
// Unused parameters (PyTorch's find_unused_parameters semantics, always on): finish() launches every bucket not yet
// launched, a parameter that got no gradient on this rank contributing zeros, so that all ranks issue the same
// all-reduces in the same order. A map of which parameters got a gradient is all-reduced with them: a parameter
// used on any rank ends with the average (created if it had no .grad here); one used on no rank keeps its .grad
// as it was (undefined stays undefined).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <map>
#include <mutex>

#include "dist.h"
#include "errors.h"
#include "tensor_handle.h"

namespace swav {
namespace {

std::vector<at::Tensor> tensorArray(Napi::Env env, const Napi::Value& v, const char* what) {
  std::vector<at::Tensor> out;
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(unwrapTensor(env, arr.Get(i), what));
  return out;
}

// Broadcasts `tensors` from `src`, one flat buffer per dtype and device; waits.
void broadcastCoalesced(const Group& g, const std::vector<at::Tensor>& tensors, int src, const std::string& op) {
  struct Flat {
    std::vector<at::Tensor> parts;
    std::vector<at::Tensor> buf;  // one tensor, as the collective takes it
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::map<std::pair<int, std::string>, Flat> byKind;
  for (const auto& t : tensors) byKind[{static_cast<int>(t.scalar_type()), t.device().str()}].parts.push_back(t);
  c10d::BroadcastOptions o;
  o.rootRank = src;
  for (auto& [kind, f] : byKind) {
    std::vector<at::Tensor> flat;
    for (const auto& t : f.parts) flat.push_back(t.reshape({-1}));
    f.buf = {at::cat(flat)};
    f.work = g.get(op).broadcast(f.buf, o);
  }
  at::NoGradGuard noGrad;
  for (auto& [kind, f] : byKind) {
    g.wait(f.work, op);
    int64_t off = 0;
    for (auto& t : f.parts) {
      t.copy_(f.buf[0].narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  }
}

// All ranks must hand the reducer the same parameters: their count and element count, compared across ranks.
void checkSameParameters(const Group& g, const std::vector<at::Tensor>& params) {
  int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();
  std::vector<at::Tensor> in{at::tensor({static_cast<int64_t>(params.size()), numel}, at::kLong)};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g.size; r++) out[0].push_back(at::empty({2}, at::kLong));
  const std::string op = "allGather of the parameter shapes (DistributedDataParallel)";
  g.wait(g.get(op).allgather(out, in), op);
  for (int r = 0; r < g.size; r++) {
    if (!out[0][r].equal(in[0])) {
      throw std::runtime_error(c10::str("rank ", r, " has ", out[0][r][0].item<int64_t>(), " parameters of ", out[0][r][1].item<int64_t>(),
                                        " elements, rank ", g.rank, " has ", params.size(), " of ", numel,
                                        " (every rank must pass the same parameters)"));
    }
  }
}

class Reducer : public std::enable_shared_from_this<Reducer> {
 public:
  Reducer(c10::intrusive_ptr<Group> g, std::vector<at::Tensor> params, int64_t capBytes, int64_t firstBytes)
      : g_(std::move(g)), params_(std::move(params)) {
    assignBuckets(capBytes, firstBytes);
    ready_.assign(params_.size(), false);
    used_ = at::zeros({static_cast<int64_t>(params_.size())}, at::kInt);
  }

  // After construction (the hooks hold weak pointers to this).
  void registerHooks() {
    for (size_t i = 0; i < params_.size(); i++) {
      if (!params_[i].requires_grad()) continue;
      // Held, because a leaf keeps its AccumulateGrad only weakly: without us it would be a new one, hookless.
      auto acc = torch::autograd::impl::grad_accumulator(params_[i]);
      hooks_.emplace_back(acc, acc->add_post_hook(std::make_unique<ReadyHook>(weak_from_this(), i)));
    }
  }

  ~Reducer() {
    for (auto& [acc, key] : hooks_) acc->del_post_hook(key);
  }

  // The waits and copies back before the optimizer step.
  void finish() {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      at::NoGradGuard noGrad;
      for (size_t b = next_; b < buckets_.size(); b++) {
        for (size_t i : buckets_[b].members) {
          if (!ready_[i]) slots_[i].view.zero_();
        }
        buckets_[b].pending = 0;
      }
      launchReady();
      std::vector<at::Tensor> used{used_};
      auto usedWork = g_->get("DistributedDataParallel").allreduce(used);
      for (size_t b = 0; b < buckets_.size(); b++) {
        g_->wait(buckets_[b].work, c10::str("allReduce of gradient bucket ", b, " (DistributedDataParallel)"));
      }
      g_->wait(usedWork, "allReduce of the used-parameter map (DistributedDataParallel)");
      auto usedAnywhere = used_.accessor<int, 1>();
      for (size_t i = 0; i < params_.size(); i++) {
        if (!usedAnywhere[i]) continue;
        at::Tensor& grad = params_[i].mutable_grad();
        if (!grad.defined()) grad = at::empty_like(params_[i]);
        grad.copy_(slots_[i].view);
      }
    } catch (...) {
      reset();
      throw;
    }
    reset();
  }

  // How many buckets have started their all-reduce since the last finish().
  size_t launched() const { return next_; }

  // Each bucket's parameter indices, in launch order.
  std::vector<std::vector<size_t>> buckets() const {
    std::vector<std::vector<size_t>> out;
    for (const auto& b : buckets_) out.push_back(b.members);
    return out;
  }

 private:
  struct ReadyHook : torch::autograd::FunctionPostHook {
    ReadyHook(std::weak_ptr<Reducer> r, size_t i) : reducer(std::move(r)), index(i) {}
    torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                              const torch::autograd::variable_list&) override {
      if (auto r = reducer.lock()) r->markReady(index);
      return outputs;
    }
    std::weak_ptr<Reducer> reducer;
    size_t index;
  };

  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> members;
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  struct Slot {
    size_t bucket = 0;
    at::Tensor view;  // the parameter's place in its bucket, shaped as the parameter
  };

  void assignBuckets(int64_t capBytes, int64_t firstBytes) {
    std::map<std::pair<int, std::string>, std::pair<size_t, int64_t>> open;  // kind -> (bucket, bytes so far)
    std::map<std::pair<int, std::string>, int> closed;
    slots_.resize(params_.size());
    for (size_t k = params_.size(); k-- > 0;) {
      const at::Tensor& p = params_[k];
      if (!p.requires_grad()) continue;
      auto kind = std::make_pair(static_cast<int>(p.scalar_type()), p.device().str());
      auto it = open.find(kind);
      if (it == open.end()) {
        it = open.emplace(kind, std::make_pair(buckets_.size(), int64_t{0})).first;
        buckets_.emplace_back();
      }
      buckets_[it->second.first].members.push_back(k);
      slots_[k].bucket = it->second.first;
      it->second.second += p.numel() * static_cast<int64_t>(p.element_size());
      if (it->second.second >= (closed[kind] == 0 ? firstBytes : capBytes)) {
        closed[kind]++;
        open.erase(it);
      }
    }
    for (auto& b : buckets_) {
      int64_t n = 0;
      for (size_t i : b.members) n += params_[i].numel();
      b.flat = at::empty({n}, params_[b.members[0]].options());
      int64_t off = 0;
      for (size_t i : b.members) {
        slots_[i].view = b.flat.narrow(0, off, params_[i].numel()).view(params_[i].sizes());
        off += params_[i].numel();
      }
      b.pending = b.members.size();
    }
  }

  // From the autograd engine, once parameter i's gradient is accumulated into its .grad.
  void markReady(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_[i]) {
      throw std::runtime_error(c10::str("DistributedDataParallel: parameter ", i, " got a second gradient before finishGradSync(); "
                                        "call finishGradSync() after each backward"));
    }
    ready_[i] = true;
    used_.data_ptr<int>()[i] = 1;
    at::NoGradGuard noGrad;
    const at::Tensor& grad = params_[i].grad();
    if (grad.defined()) {
      slots_[i].view.copy_(grad);
    } else {
      slots_[i].view.zero_();
    }
    if (--buckets_[slots_[i].bucket].pending == 0) launchReady();
  }

  // Launches the ready buckets in bucket order only, so that every rank issues the same collectives in the same order.
  void launchReady() {
    while (next_ < buckets_.size() && buckets_[next_].pending == 0) {
      Bucket& b = buckets_[next_++];
      b.flat.div_(g_->size);
      std::vector<at::Tensor> ts{b.flat};
      b.work = g_->get("DistributedDataParallel").allreduce(ts);
    }
  }

  void reset() {
    std::fill(ready_.begin(), ready_.end(), false);
    used_.zero_();
    for (auto& b : buckets_) {
      b.pending = b.members.size();
      b.work.reset();
    }
    next_ = 0;
  }

  c10::intrusive_ptr<Group> g_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<Slot> slots_;
  std::vector<bool> ready_;
  at::Tensor used_;  // int32 per parameter: got a gradient this iteration (all-reduced in finish)
  size_t next_ = 0;  // the next bucket to launch
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
  std::mutex mu_;
};

const napi_type_tag kReducerTag = {0x5377415652656475ULL, 0x6365724861646c03ULL};

struct ReducerBox {
  std::shared_ptr<Reducer> reducer;  // null once disposed
};

Reducer& reducerOf(Napi::Env env, const Napi::Value& v) {
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &kReducerTag, &tagged);
  if (!tagged) throw Napi::TypeError::New(env, "expected a DistributedDataParallel handle");
  auto& r = v.As<Napi::External<ReducerBox>>().Data()->reducer;
  if (!r) throw Napi::Error::New(env, "DistributedDataParallel used after dispose()");
  return *r;
}

// ddpCreate(group, params, buffers, bucketCapBytes, firstBucketBytes) -> handle. Checks that every rank has the same
// parameters, broadcasts parameters and buffers from rank 0, builds the buckets and hooks the parameters.
Napi::Value ddpCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = unwrapGroup(env, info[0]);
  auto params = tensorArray(env, info[1], "DistributedDataParallel parameter");
  auto buffers = tensorArray(env, info[2], "DistributedDataParallel buffer");
  const int64_t cap = info[3].As<Napi::Number>().Int64Value(), first = info[4].As<Napi::Number>().Int64Value();
  return guarded(env, "DistributedDataParallel", [&] {
    checkSameParameters(*g, params);
    std::vector<at::Tensor> state(params);
    state.insert(state.end(), buffers.begin(), buffers.end());
    broadcastCoalesced(*g, state, 0, "broadcast of the parameters and buffers (DistributedDataParallel)");
    auto reducer = std::make_shared<Reducer>(g, params, cap, first);
    reducer->registerHooks();
    auto ext = Napi::External<ReducerBox>::New(env, new ReducerBox{reducer}, [](Napi::Env, ReducerBox* b) { delete b; });
    napi_type_tag_object(env, ext, &kReducerTag);
    return Napi::Value(ext);
  });
}

Napi::Value ddpFinish(const Napi::CallbackInfo& info) {
  Reducer& r = reducerOf(info.Env(), info[0]);
  guarded(info.Env(), "finishGradSync", [&] { r.finish(); });
  return info.Env().Undefined();
}

Napi::Value ddpBuckets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto buckets = reducerOf(env, info[0]).buckets();
  auto out = Napi::Array::New(env, buckets.size());
  for (size_t b = 0; b < buckets.size(); b++) {
    auto members = Napi::Array::New(env, buckets[b].size());
    for (size_t k = 0; k < buckets[b].size(); k++) members.Set(static_cast<uint32_t>(k), static_cast<double>(buckets[b][k]));
    out.Set(static_cast<uint32_t>(b), members);
  }
  return out;
}

Napi::Value ddpLaunched(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(reducerOf(info.Env(), info[0]).launched()));
}

// ddpDispose(handle): the hooks removed, the buckets freed.
Napi::Value ddpDispose(const Napi::CallbackInfo& info) {
  reducerOf(info.Env(), info[0]);
  info[0].As<Napi::External<ReducerBox>>().Data()->reducer.reset();
  return info.Env().Undefined();
}

// distBroadcastCoalesced(group, tensors, src): in place, waits (DDP's buffer broadcast).
Napi::Value distBroadcastCoalesced(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = unwrapGroup(env, info[0]);
  auto tensors = tensorArray(env, info[1], "broadcastCoalesced");
  const int src = info[2].As<Napi::Number>().Int32Value();
  guarded(env, "broadcastCoalesced", [&] { broadcastCoalesced(*g, tensors, src, "broadcast"); });
  return env.Undefined();
}

}  // namespace

void initDdp(Napi::Env env, Napi::Object exports) {
  exports.Set("ddpCreate", Napi::Function::New<exported<ddpCreate>>(env, "ddpCreate"));
  exports.Set("ddpFinish", Napi::Function::New<exported<ddpFinish>>(env, "ddpFinish"));
  exports.Set("ddpBuckets", Napi::Function::New<exported<ddpBuckets>>(env, "ddpBuckets"));
  exports.Set("ddpLaunched", Napi::Function::New<exported<ddpLaunched>>(env, "ddpLaunched"));
  exports.Set("ddpDispose", Napi::Function::New<exported<ddpDispose>>(env, "ddpDispose"));
  exports.Set("distBroadcastCoalesced", Napi::Function::New<exported<distBroadcastCoalesced>>(env, "distBroadcastCoalesced"));
}

}  // namespace swav
