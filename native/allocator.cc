// A caching CPU allocator for libtorch. glibc maps every block of 32 MiB or more fresh from the kernel and unmaps
// it when freed, so each forward pass faults in and zeroes its large activations again (~12% of a ResNet-50
// forward's CPU time here, batch 16). Such blocks freed by libtorch are kept (up to a cap) and handed out again
// for requests of nearly the same size; smaller ones go to c10's own alloc_cpu / free_cpu, whose heap glibc
// reuses by itself. (Caching from 1 MiB, or with transparent huge pages, made the training step slower: its
// working set is far above any cap worth its memory, and the churn cost more than glibc's own reuse.)
// SWAV_CPU_CACHE=N caps the idle cache at N MiB (default 256); 0 keeps libtorch's default allocator.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <napi.h>
#include <sys/mman.h>

#include "errors.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <map>
#include <mutex>
#include <unordered_map>

namespace swav {
namespace {

constexpr size_t kLarge = size_t{32} << 20;  // blocks glibc always maps afresh (its mmap threshold's ceiling)
constexpr size_t kGranule = size_t{2} << 20;  // sizes are rounded up to this, so that near sizes share blocks
size_t maxIdle = size_t{256} << 20;           // idle cached bytes kept at most

struct CachingCPUAllocator final : c10::Allocator {
  mutable std::mutex mu;
  mutable std::unordered_map<void*, size_t> live;  // large blocks handed out, by address
  mutable std::multimap<size_t, void*> idle;        // large blocks free for reuse, by size
  mutable size_t idleBytes = 0;
  mutable uint64_t reused = 0, mapped = 0;  // large allocations served from the cache / by the kernel

  // Mapped and unmapped directly, as glibc does for these sizes, so that a block released goes back at once.
  static void* map(size_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  static size_t rounded(size_t n) { return (n + kGranule - 1) / kGranule * kGranule; }

  void* take(size_t n) const {
    const size_t size = rounded(n);
    {
      std::lock_guard<std::mutex> lock(mu);
      // the smallest idle block that fits, if it wastes at most a quarter of itself
      auto it = idle.lower_bound(size);
      if (it != idle.end() && it->first - size <= it->first / 4) {
        void* p = it->second;
        live.emplace(p, it->first);
        idleBytes -= it->first;
        idle.erase(it);
        reused++;
        return p;
      }
    }
    void* p = map(size);
    if (!p) {
      release(SIZE_MAX / 2);  // out of memory: give back everything idle and try once more
      if (!(p = map(size))) throw std::bad_alloc();
    }
    std::lock_guard<std::mutex> lock(mu);
    live.emplace(p, size);
    mapped++;
    return p;
  }

  // Frees idle blocks until `wanted` more bytes would fit under the cap (everything when wanted is large).
  void release(size_t wanted) const {
    std::lock_guard<std::mutex> lock(mu);
    while (!idle.empty() && idleBytes + wanted > maxIdle) {
      auto it = std::prev(idle.end());  // the largest first
      idleBytes -= it->first;
      munmap(it->second, it->first);
      idle.erase(it);
    }
  }

  static void deleter(void* p);

  c10::DataPtr allocate(size_t n) const override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n < kLarge) {  // small blocks skip the lock: their deleter is c10's own
      void* p = c10::alloc_cpu(n);
      return {p, p, &c10::free_cpu, cpu};
    }
    void* p = take(n);
    return {p, p, &deleter, cpu};
  }
  // (raw_deallocate of a small block comes here too: not found among the large ones, it goes to free_cpu)
  c10::DeleterFnPtr raw_deleter() const override { return &deleter; }
};

CachingCPUAllocator& instance() {
  static auto* a = new CachingCPUAllocator();  // never destroyed: tensors may outlive static destructors
  return *a;
}

void CachingCPUAllocator::deleter(void* p) {
  if (!p) return;
  auto& a = instance();
  size_t size = 0;
  {
    std::lock_guard<std::mutex> lock(a.mu);
    auto it = a.live.find(p);
    if (it != a.live.end()) {
      size = it->second;
      a.live.erase(it);
    }
  }
  if (size == 0) return c10::free_cpu(p);
  if (size > maxIdle) return static_cast<void>(munmap(p, size));
  a.release(size);
  std::lock_guard<std::mutex> lock(a.mu);
  a.idle.emplace(size, p);
  a.idleBytes += size;
}

}  // namespace

// cpuCache() -> { enabled, idleBytes, reused, mapped }: what the cache holds and how it served large requests.
Napi::Value cpuCache(const Napi::CallbackInfo& info) {
  auto& a = instance();
  auto o = Napi::Object::New(info.Env());
  std::lock_guard<std::mutex> lock(a.mu);
  o.Set("enabled", c10::GetCPUAllocator() == &a);
  o.Set("idleBytes", static_cast<double>(a.idleBytes));
  o.Set("reused", static_cast<double>(a.reused));
  o.Set("mapped", static_cast<double>(a.mapped));
  return o;
}

void initAllocator(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuCache", Napi::Function::New<exported<cpuCache>>(env, "cpuCache"));
  static std::once_flag once;  // the addon is loaded again by each worker thread
  std::call_once(once, [] {
    if (const char* env = std::getenv("SWAV_CPU_CACHE")) {
      char* end = nullptr;
      const long mib = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && mib >= 0) {
        if (mib == 0) return;
        maxIdle = static_cast<size_t>(mib) << 20;
      }
    }
    c10::SetCPUAllocator(&instance(), /*priority=*/1);
  });
}

}  // namespace swav
