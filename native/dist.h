// What dist.cc (stores, process groups, collectives), ddp.cc (the gradient reducer) and sync_batch_norm.cc share:
// the process group behind a JS handle, and waiting for a collective with the group's timeout.
#pragma once
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>
#include <napi.h>

#include <chrono>
#include <string>

namespace swav {

// libtorch 2 moved the collectives of a backend (Gloo, NCCL) from ProcessGroup to Backend.
#if TORCH_VERSION_MAJOR >= 2
using Comm = c10d::Backend;
#else
using Comm = c10d::ProcessGroup;
#endif

// One process group. A CustomClassHolder so that an autograd node can keep it in an IValue (SyncBatchNorm).
struct Group : torch::CustomClassHolder {
  c10::intrusive_ptr<c10d::Store> store;  // the group's store, under which subgroups rendezvous
  c10::intrusive_ptr<Comm> comm;          // null once destroyed
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  int subgroups = 0;  // subgroups made from this group so far: each one's store prefix

  // The communicator; throws when the group was destroyed.
  Comm& get(const std::string& op) const;
  // "<op> on rank <r> of <n> failed: <why>": how every collective's failure reads.
  std::string failure(const std::string& op, const std::string& why) const;
  // Waits for `work` at most the group's timeout (plus a margin for Gloo's own timeout to report first);
  // a failure or a timeout throws std::runtime_error(failure(op, ...)).
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& op) const;
};

// The group behind a JS group handle; throws a TypeError for anything else.
c10::intrusive_ptr<Group> unwrapGroup(Napi::Env env, const Napi::Value& v);

}  // namespace swav
