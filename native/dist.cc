// c10d from JS: a store (TCPStore served by rank 0, or a FileStore), a process group over it (Gloo; NCCL where
// the addon is built against a CUDA libtorch with USE_C10D_NCCL), and collectives returning work handles.
// Creating a group and waiting asynchronously run on libuv's threads, so the event loop never blocks on a peer;
// every wait is bounded by the group's timeout.
#include "dist.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <functional>
#include <memory>

#include "errors.h"
#include "tensor_handle.h"

namespace swav {
namespace {

// An exception's message, without c10's backtrace.
std::string messageOf(const std::exception& e) {
  auto* c = dynamic_cast<const c10::Error*>(&e);
  return c ? c->what_without_backtrace() : e.what();
}

// The backends compiled in, comma-separated, for messages and for JS (distBackends).
std::string backendsBuilt() {
  std::string out;
#ifdef USE_C10D_GLOO
  out += "gloo";
#endif
#ifdef USE_C10D_NCCL
  out += out.empty() ? "nccl" : ", nccl";
#endif
  return out;
}

}  // namespace

Comm& Group::get(const std::string& op) const {
  if (!comm) throw std::runtime_error(op + ": the process group was destroyed");
  return *comm;
}

std::string Group::failure(const std::string& op, const std::string& why) const {
  return op + " on rank " + std::to_string(rank) + " of " + std::to_string(size) + " failed: " + why;
}

void Group::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& op) const {
  // Gloo's own timeout names the transfer that stalled; ours, a little later, only backs it up.
  const auto limit = timeout + std::chrono::seconds(2);
  try {
    work->wait(limit);
  } catch (const std::exception& e) {
    std::string why = messageOf(e);
    if (why.find("Operation timed out") != std::string::npos) {
      why = c10::str("no result within ", limit.count() / 1000.0, " s (the group's timeout)");
    }
    // Gloo names the peer by address only; in a pair there is no doubt which rank it was.
    if (size == 2 && why.find("closed by peer") != std::string::npos) why += c10::str(" (rank ", 1 - rank, ")");
    throw std::runtime_error(failure(op, why));
  }
}

namespace {

// A JS external owning one P (a smart pointer), tagged so that another external is refused.
template <typename P>
struct Held {
  P ptr;
};

template <typename P>
Napi::Value hold(Napi::Env env, P p, const napi_type_tag& tag) {
  auto ext = Napi::External<Held<P>>::New(env, new Held<P>{std::move(p)}, [](Napi::Env, Held<P>* h) { delete h; });
  napi_type_tag_object(env, ext, &tag);
  return ext;
}

template <typename P>
P& held(Napi::Env env, const Napi::Value& v, const napi_type_tag& tag, const char* what) {
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(env, v, &tag, &tagged);
  if (!tagged) throw Napi::TypeError::New(env, std::string("expected a ") + what);
  return v.As<Napi::External<Held<P>>>().Data()->ptr;
}

const napi_type_tag kGroupTag = {0x5377415647726f75ULL, 0x7048616e646c6501ULL};
const napi_type_tag kWorkTag = {0x5377415657726f6bULL, 0x48616e646c650201ULL};

// Runs `job` on a libuv thread; `done` then settles the promise on the main thread (a throw rejects it).
class Background : public Napi::AsyncWorker {
 public:
  Background(Napi::Env env, std::function<void()> job, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)), done_(std::move(done)) {}

  static Napi::Promise run(Napi::Env env, std::function<void()> job, std::function<Napi::Value(Napi::Env)> done) {
    auto* w = new Background(env, std::move(job), std::move(done));
    auto p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

  void Execute() override {
    try {
      job_();
    } catch (const std::exception& e) {
      SetError(messageOf(e));
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(guarded(Env(), "", [&] { return done_(Env()); }));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(torchError(Env(), "", e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> job_;
  std::function<Napi::Value(Napi::Env)> done_;
};

// How a process joins a group: everything read from JS before the work leaves the main thread.
struct JoinSpec {
  std::string backend;  // "gloo" | "nccl"
  int rank = 0, size = 1;
  std::chrono::milliseconds timeout{0};
  std::string iface, hostname;  // Gloo's device: an interface, else an address, else the default device
};

c10::intrusive_ptr<Comm> makeComm(const JoinSpec& s, const c10::intrusive_ptr<c10d::Store>& store) {
#ifdef USE_C10D_GLOO
  if (s.backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(s.timeout);
    opts->devices.push_back(!s.iface.empty() ? c10d::ProcessGroupGloo::createDeviceForInterface(s.iface)
                            : !s.hostname.empty() ? c10d::ProcessGroupGloo::createDeviceForHostname(s.hostname)
                                                  : c10d::ProcessGroupGloo::createDefaultDevice());
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, s.rank, s.size, opts);
  }
#endif
#ifdef USE_C10D_NCCL
  if (s.backend == "nccl") {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = s.timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, s.rank, s.size, opts);
  }
#endif
  throw std::runtime_error("backend '" + s.backend + "' is not in this build (it has: " + backendsBuilt() +
                           "; NCCL needs the addon built against a CUDA libtorch with NCCL's headers, Gloo libgloo-dev)");
}

c10::intrusive_ptr<Group> join(const JoinSpec& s, c10::intrusive_ptr<c10d::Store> store, const std::string& prefix) {
  auto g = c10::make_intrusive<Group>();
  g->store = std::move(store);
  g->rank = s.rank;
  g->size = s.size;
  g->timeout = s.timeout;
  try {
    g->comm = makeComm(s, c10::make_intrusive<c10d::PrefixStore>(prefix, g->store));
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(s.rank) + " of " + std::to_string(s.size) +
                             " could not join the " + s.backend + " group: " + messageOf(e));
  }
  return g;
}

JoinSpec joinSpec(Napi::Env env, const Napi::Object& o) {
  JoinSpec s;
  s.backend = o.Get("backend").As<Napi::String>().Utf8Value();
  s.rank = o.Get("rank").As<Napi::Number>().Int32Value();
  s.size = o.Get("worldSize").As<Napi::Number>().Int32Value();
  s.timeout = std::chrono::milliseconds(o.Get("timeoutMs").As<Napi::Number>().Int64Value());
  if (o.Get("interface").IsString()) s.iface = o.Get("interface").As<Napi::String>().Utf8Value();
  if (o.Get("hostname").IsString()) s.hostname = o.Get("hostname").As<Napi::String>().Utf8Value();
  if (s.size < 1 || s.rank < 0 || s.rank >= s.size) {
    throw Napi::RangeError::New(env, "initProcessGroup: rank " + std::to_string(s.rank) + " is not in [0, " + std::to_string(s.size) + ")");
  }
  if (s.timeout.count() <= 0) throw Napi::RangeError::New(env, "initProcessGroup: the timeout must be positive");
  return s;
}

c10::intrusive_ptr<c10d::Store> tcpStore(const JoinSpec& s, const std::string& host, int port) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = s.rank == 0;
  o.numWorkers = s.size;
  o.timeout = s.timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, o);
  } catch (const std::exception& e) {
    const std::string why = messageOf(e);
    const std::string where = host + ":" + std::to_string(port);
    if (o.isServer && why.find("ddress already in use") != std::string::npos) {
      throw std::runtime_error("rank 0 cannot serve the TCPStore on " + where +
                               ": the port is already in use (pick another masterPort)");
    }
    throw std::runtime_error("rank " + std::to_string(s.rank) + " of " + std::to_string(s.size) +
                             (o.isServer ? " could not serve the TCPStore on " : " could not reach the TCPStore on ") +
                             where + ": " + why);
  }
}

// distInit({backend, rank, worldSize, timeoutMs, interface?, hostname?, host, port} | {..., storePath})
//   -> Promise<group>: rank 0 serves the TCPStore (or all share the FileStore), then every rank joins.
Napi::Value distInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  JoinSpec s = joinSpec(env, o);
  std::string path = o.Get("storePath").IsString() ? o.Get("storePath").As<Napi::String>().Utf8Value() : "";
  std::string host = o.Get("host").IsString() ? o.Get("host").As<Napi::String>().Utf8Value() : "";
  int port = o.Get("port").IsNumber() ? o.Get("port").As<Napi::Number>().Int32Value() : 0;
  if (path.empty() && (port <= 0 || port > 65535)) throw Napi::RangeError::New(env, "initProcessGroup: masterPort must be in 1..65535");
  auto result = std::make_shared<c10::intrusive_ptr<Group>>();
  return Background::run(
      env,
      [=] {
        c10::intrusive_ptr<c10d::Store> store;
        if (path.empty()) {
          store = tcpStore(s, host, port);
        } else {
          store = c10::make_intrusive<c10d::FileStore>(path, s.size);
          store->setTimeout(s.timeout);
        }
        *result = join(s, store, "world/");
      },
      [=](Napi::Env env) { return hold(env, *result, kGroupTag); });
}

// distNewGroup(group, ranks, spec) -> Promise<group | null>: every rank of `group` calls it with the same ranks
// (as torch.distributed.new_group); the members rendezvous under a prefix of the parent's store, the others get null.
Napi::Value distNewGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto parent = unwrapGroup(env, info[0]);
  auto ranks = info[1].As<Napi::Array>();
  JoinSpec s = joinSpec(env, info[2].As<Napi::Object>());
  const std::string prefix = "sub" + std::to_string(++parent->subgroups) + "/";
  s.size = static_cast<int>(ranks.Length());
  s.rank = -1;
  for (uint32_t i = 0; i < ranks.Length(); i++) {
    if (ranks.Get(i).As<Napi::Number>().Int32Value() == parent->rank) s.rank = static_cast<int>(i);
  }
  if (s.rank < 0) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Null());
    return d.Promise();
  }
  auto result = std::make_shared<c10::intrusive_ptr<Group>>();
  auto store = parent->store;
  return Background::run(
      env, [=] { *result = join(s, store, prefix); }, [=](Napi::Env env) { return hold(env, *result, kGroupTag); });
}

// distDestroy(group): waits for the group's queued work, then closes its connections and store.
Napi::Value distDestroy(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info.Env(), info[0]);
  g->comm.reset();
  g->store.reset();
  return info.Env().Undefined();
}

// One launched collective. `post` runs once, on the main thread, after it succeeded (averaging, copying back).
struct WorkBox {
  c10::intrusive_ptr<Group> group;
  c10::intrusive_ptr<c10d::Work> work;
  std::string op;
  std::function<void()> post;
  bool settled = false;
  std::string error;  // why it failed, once settled by a failure
};

void settle(WorkBox& w, const std::string& error) {
  if (w.settled) return;
  w.settled = true;
  w.error = error;
  if (error.empty() && w.post) {
    at::NoGradGuard noGrad;  // the tensors may be parameters
    w.post();
  }
  w.post = nullptr;  // releases the tensors it holds
}

void throwIfFailed(Napi::Env env, const WorkBox& w) {
  if (!w.error.empty()) throw torchError(env, "", w.error);
}

Napi::Value wrapWork(Napi::Env env, const c10::intrusive_ptr<Group>& g, std::string op, c10::intrusive_ptr<c10d::Work> work,
                     std::function<void()> post) {
  auto box = std::make_shared<WorkBox>();
  box->group = g;
  box->work = std::move(work);
  box->op = std::move(op);
  box->post = std::move(post);
  return hold(env, std::move(box), kWorkTag);
}

std::shared_ptr<WorkBox>& unwrapWork(Napi::Env env, const Napi::Value& v) {
  return held<std::shared_ptr<WorkBox>>(env, v, kWorkTag, "work handle");
}

// distWait(work): blocks until done, at most the group's timeout.
Napi::Value distWait(const Napi::CallbackInfo& info) {
  auto& w = *unwrapWork(info.Env(), info[0]);
  if (!w.settled) {
    std::string error;
    try {
      w.group->wait(w.work, w.op);
    } catch (const std::exception& e) {
      error = e.what();
    }
    settle(w, error);
  }
  throwIfFailed(info.Env(), w);
  return info.Env().Undefined();
}

// distWaitAsync(work) -> Promise<void>: the wait on a libuv thread.
Napi::Value distWaitAsync(const Napi::CallbackInfo& info) {
  auto box = unwrapWork(info.Env(), info[0]);
  auto error = std::make_shared<std::string>();
  return Background::run(
      info.Env(),
      [box, error] {
        try {
          box->group->wait(box->work, box->op);
        } catch (const std::exception& e) {
          *error = e.what();
        }
      },
      [box, error](Napi::Env env) {
        settle(*box, *error);
        throwIfFailed(env, *box);
        return env.Undefined();
      });
}

Napi::Value distIsCompleted(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unwrapWork(info.Env(), info[0])->work->isCompleted());
}

// Gloo reduces dense contiguous tensors: the buffer to hand it, and the copy back into `t` when it is another.
at::Tensor contiguousBuffer(const at::Tensor& t, std::function<void()>& copyBack) {
  if (t.is_contiguous()) return t;
  at::Tensor buf = t.contiguous();
  copyBack = [t, buf]() mutable { t.copy_(buf); };
  return buf;
}

c10d::ReduceOp reduceOp(const std::string& name, bool& average) {
  average = name == "avg";
  if (name == "sum" || name == "avg") return c10d::ReduceOp::SUM;
  if (name == "max") return c10d::ReduceOp::MAX;
  if (name == "min") return c10d::ReduceOp::MIN;
  if (name == "product") return c10d::ReduceOp::PRODUCT;
  throw std::runtime_error("unknown reduce op '" + name + "' (sum, avg, max, min or product)");
}

// The reduce op of argument `i`; avg (Gloo has none) is a sum divided afterwards, for floating tensors only.
c10d::ReduceOp reduceArg(const Napi::CallbackInfo& info, int i, const at::Tensor& t, bool& average) {
  auto op = reduceOp(info[i].As<Napi::String>().Utf8Value(), average);
  if (average && !at::isFloatingType(t.scalar_type())) throw std::runtime_error("avg needs a floating-point tensor");
  return op;
}

// distAllReduce(group, t, op) -> work: `t` reduced in place.
Napi::Value distAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = unwrapGroup(env, info[0]);
  const at::Tensor& t = unwrapTensor(env, info[1], "allReduce");
  return guarded(env, "allReduce", [&] {
    bool average;
    c10d::AllreduceOptions o;
    o.reduceOp = reduceArg(info, 2, t, average);
    std::function<void()> copyBack;
    std::vector<at::Tensor> ts{contiguousBuffer(t, copyBack)};
    auto work = g->get("allReduce").allreduce(ts, o);
    const double n = g->size;
    return wrapWork(env, g, "allReduce", work, [buf = ts[0], average, n, copyBack]() mutable {
      if (average) buf.div_(n);
      if (copyBack) copyBack();
    });
  });
}

// distBroadcast(group, t, src) -> work: `t` overwritten by rank src's.
Napi::Value distBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = unwrapGroup(env, info[0]);
  const at::Tensor& t = unwrapTensor(env, info[1], "broadcast");
  const int src = info[2].As<Napi::Number>().Int32Value();
  return guarded(env, "broadcast", [&] {
    if (src < 0 || src >= g->size) throw std::runtime_error("broadcast: src " + std::to_string(src) + " is not a rank of the group");
    c10d::BroadcastOptions o;
    o.rootRank = src;
    std::function<void()> copyBack;
    std::vector<at::Tensor> ts{contiguousBuffer(t, copyBack)};
    auto work = g->get("broadcast").broadcast(ts, o);
    return wrapWork(env, g, "broadcast", work, [buf = ts[0], copyBack] { if (copyBack) copyBack(); });
  });
}

Napi::Value outputAndWork(Napi::Env env, at::Tensor out, Napi::Value work) {
  auto pair = Napi::Array::New(env, 2);
  pair.Set(0u, wrapTensor(env, std::move(out)));
  pair.Set(1u, work);
  return pair;
}

// distAllGather(group, t) -> [output, work]: every rank's `t` (equal shapes) concatenated along dim 0 in rank
// order (a 0-d `t` counts as shape [1]); `output` is filled once the work completes.
Napi::Value distAllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = unwrapGroup(env, info[0]);
  const at::Tensor& t = unwrapTensor(env, info[1], "allGather");
  return guarded(env, "allGather", [&] {
    std::vector<at::Tensor> in{(t.dim() == 0 ? t.reshape({1}) : t).contiguous()};
    auto sizes = in[0].sizes().vec();
    const int64_t n0 = sizes[0];
    sizes[0] *= g->size;
    at::Tensor out = at::empty(sizes, in[0].options());
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < g->size; r++) outs[0].push_back(out.narrow(0, r * n0, n0));
    auto work = g->get("allGather").allgather(outs, in);
    return outputAndWork(env, out, wrapWork(env, g, "allGather", work, nullptr));
  });
}

// distReduceScatter(group, t, op) -> [output, work]: `t` is worldSize equal chunks along dim 0; rank r's output is
// chunk r reduced over the ranks. Gloo has no reduce-scatter in this libtorch: an all-reduce of a copy, the output
// a view of its chunk (so it keeps the whole copy alive).
Napi::Value distReduceScatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = unwrapGroup(env, info[0]);
  const at::Tensor& t = unwrapTensor(env, info[1], "reduceScatter");
  return guarded(env, "reduceScatter", [&] {
    bool average;
    c10d::AllreduceOptions o;
    o.reduceOp = reduceArg(info, 2, t, average);
    if (t.dim() == 0 || t.size(0) % g->size != 0) {
      throw std::runtime_error("reduceScatter: the input's first dimension (" + (t.dim() ? std::to_string(t.size(0)) : std::string("none")) +
                               ") must be a multiple of the world size " + std::to_string(g->size));
    }
    std::vector<at::Tensor> ts{t.clone(at::MemoryFormat::Contiguous)};
    const int64_t k = t.size(0) / g->size;
    at::Tensor out = ts[0].narrow(0, g->rank * k, k);
    auto work = g->get("reduceScatter").allreduce(ts, o);
    const double n = g->size;
    return outputAndWork(env, out, wrapWork(env, g, "reduceScatter", work, [out, average, n]() mutable {
      if (average) out.div_(n);
    }));
  });
}

// distBarrier(group) -> work.
Napi::Value distBarrier(const Napi::CallbackInfo& info) {
  auto g = unwrapGroup(info.Env(), info[0]);
  return guarded(info.Env(), "barrier", [&] {
    return wrapWork(info.Env(), g, "barrier", g->get("barrier").barrier(c10d::BarrierOptions()), nullptr);
  });
}

}  // namespace

c10::intrusive_ptr<Group> unwrapGroup(Napi::Env env, const Napi::Value& v) {
  return held<c10::intrusive_ptr<Group>>(env, v, kGroupTag, "process group");
}

void initDist(Napi::Env env, Napi::Object exports) {
  exports.Set("distBackends", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return Napi::String::New(info.Env(), backendsBuilt());
  }, "distBackends"));
  exports.Set("distInit", Napi::Function::New<exported<distInit>>(env, "distInit"));
  exports.Set("distNewGroup", Napi::Function::New<exported<distNewGroup>>(env, "distNewGroup"));
  exports.Set("distDestroy", Napi::Function::New<exported<distDestroy>>(env, "distDestroy"));
  exports.Set("distWait", Napi::Function::New<exported<distWait>>(env, "distWait"));
  exports.Set("distWaitAsync", Napi::Function::New<exported<distWaitAsync>>(env, "distWaitAsync"));
  exports.Set("distIsCompleted", Napi::Function::New<exported<distIsCompleted>>(env, "distIsCompleted"));
  exports.Set("distAllReduce", Napi::Function::New<exported<distAllReduce>>(env, "distAllReduce"));
  exports.Set("distBroadcast", Napi::Function::New<exported<distBroadcast>>(env, "distBroadcast"));
  exports.Set("distAllGather", Napi::Function::New<exported<distAllGather>>(env, "distAllGather"));
  exports.Set("distReduceScatter", Napi::Function::New<exported<distReduceScatter>>(env, "distReduceScatter"));
  exports.Set("distBarrier", Napi::Function::New<exported<distBarrier>>(env, "distBarrier"));
}

}  // namespace swav
