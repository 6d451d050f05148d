// A caching CPU allocator for libtorch. glibc maps blocks above its mmap threshold (128 KiB rising to 32 MiB)
// fresh from the kernel and unmaps them when freed, and trims its heap, so each training step faulted in and
// zeroed tens of thousands of pages again (a fifth to a quarter of a ResNet-50 SwAV step's CPU time here).
// Blocks of 256 KiB and more freed by libtorch are kept and handed out again for requests of nearly the same
// size; smaller ones go to c10's own alloc_cpu / free_cpu, whose heap glibc reuses by itself.
// The memory held, in use and idle, never exceeds the most ever in use at once plus a margin: a steady step
// reuses its own blocks and never maps, and a program whose sizes drift cannot grow without bound.
// SWAV_CPU_CACHE=N sets the margin in MiB (default 256); 0 keeps libtorch's default allocator.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <napi.h>
#include <sys/mman.h>

#include "errors.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace swav {
namespace {

constexpr size_t kMin = size_t{256} << 10;  // smaller blocks stay in glibc's heap
size_t margin = size_t{256} << 20;          // held at most above the peak in use

struct CachingCPUAllocator final : c10::Allocator {
  mutable std::mutex mu;
  mutable std::unordered_map<void*, size_t> live;  // blocks handed out, by address
  mutable std::multimap<size_t, void*> idle;        // blocks free for reuse, by size
  mutable size_t liveBytes = 0, idleBytes = 0, peakLive = 0;
  mutable uint64_t reused = 0, mapped = 0;  // allocations served from the cache / by the kernel

  // Populated at once: the kernel fills the whole block in one call, where touching it page by page takes one
  // fault each (loading a 380 MB checkpoint here: 1.7 s -> 0.8-1.0 s). A tensor's memory is nearly always written
  // whole right after it is allocated, so nothing is mapped that would otherwise stay untouched.
  static void* map(size_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // Sizes are rounded up to a sixteenth of their power of two (64 KiB at least), so that near sizes share blocks.
  static size_t rounded(size_t n) {
    size_t g = size_t{1} << (63 - __builtin_clzll(n));
    g = std::max(g / 16, size_t{64} << 10);
    return (n + g - 1) / g * g;
  }

  // Gives idle blocks back to the system, the largest first, until `keep` bytes at most stay idle.
  void shrinkTo(size_t keep) const {
    std::vector<std::pair<void*, size_t>> out;
    {
      std::lock_guard<std::mutex> lock(mu);
      while (!idle.empty() && idleBytes > keep) {
        auto it = std::prev(idle.end());
        out.emplace_back(it->second, it->first);
        idleBytes -= it->first;
        idle.erase(it);
      }
    }
    for (auto& [p, size] : out) munmap(p, size);  // outside the lock: other threads go on allocating
  }

  void handOut(void* p, size_t size) const {  // under mu
    live.emplace(p, size);
    liveBytes += size;
    peakLive = std::max(peakLive, liveBytes);
  }

  void* take(size_t n) const {
    const size_t size = rounded(n);
    size_t keep;
    {
      std::lock_guard<std::mutex> lock(mu);
      // the smallest idle block that fits, if it wastes at most a quarter of itself
      auto it = idle.lower_bound(size);
      if (it != idle.end() && it->first - size <= it->first / 4) {
        void* p = it->second;
        idleBytes -= it->first;
        handOut(p, it->first);
        idle.erase(it);
        reused++;
        return p;
      }
      // a new block: hold no more than the peak in use (counting this block) plus the margin
      const size_t inUse = liveBytes + size;
      keep = std::max(peakLive, inUse) + margin - inUse;
    }
    shrinkTo(keep);
    void* p = map(size);
    if (!p) {  // out of memory: give back everything idle and try once more
      shrinkTo(0);
      p = map(size);
      TORCH_CHECK(p, "not enough memory: tried to allocate ", n, " bytes (", std::fixed,
                  std::setprecision(1), static_cast<double>(n) / (1 << 30), " GiB) on the CPU; use a smaller batch or free memory");
    }
    std::lock_guard<std::mutex> lock(mu);
    handOut(p, size);
    mapped++;
    return p;
  }

  static void deleter(void* p);

  c10::DataPtr allocate(size_t n) const override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n < kMin) {  // small blocks skip the lock: their deleter is c10's own
      void* p = c10::alloc_cpu(n);
      return {p, p, &c10::free_cpu, cpu};
    }
    void* p = take(n);
    return {p, p, &deleter, cpu};
  }
  // (raw_deallocate of a small block comes here too: not found among the cached ones, it goes to free_cpu)
  c10::DeleterFnPtr raw_deleter() const override { return &deleter; }
};

CachingCPUAllocator& instance() {
  static auto* a = new CachingCPUAllocator();  // never destroyed: tensors may outlive static destructors
  return *a;
}

// Freeing never adds to what is held, so a freed block is always kept.
void CachingCPUAllocator::deleter(void* p) {
  if (!p) return;
  auto& a = instance();
  {
    std::lock_guard<std::mutex> lock(a.mu);
    auto it = a.live.find(p);
    if (it != a.live.end()) {
      a.liveBytes -= it->second;
      a.idle.emplace(it->second, p);
      a.idleBytes += it->second;
      a.live.erase(it);
      return;
    }
  }
  c10::free_cpu(p);
}

}  // namespace

// cpuCache() -> { enabled, liveBytes, idleBytes, peakBytes, reused, mapped }: what the cache holds and how it
// served requests.
Napi::Value cpuCache(const Napi::CallbackInfo& info) {
  auto& a = instance();
  auto o = Napi::Object::New(info.Env());
  std::lock_guard<std::mutex> lock(a.mu);
  o.Set("enabled", c10::GetCPUAllocator() == &a);
  o.Set("liveBytes", static_cast<double>(a.liveBytes));
  o.Set("idleBytes", static_cast<double>(a.idleBytes));
  o.Set("peakBytes", static_cast<double>(a.peakLive));
  o.Set("reused", static_cast<double>(a.reused));
  o.Set("mapped", static_cast<double>(a.mapped));
  return o;
}

// cpuEmptyCache(): gives every idle block back to the system, as torch.cuda.empty_cache does for the GPU, and
// restarts the peak from what is in use now.
Napi::Value cpuEmptyCache(const Napi::CallbackInfo& info) {
  auto& a = instance();
  a.shrinkTo(0);
  std::lock_guard<std::mutex> lock(a.mu);
  a.peakLive = a.liveBytes;
  return info.Env().Undefined();
}

void initAllocator(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuCache", Napi::Function::New<exported<cpuCache>>(env, "cpuCache"));
  exports.Set("cpuEmptyCache", Napi::Function::New<exported<cpuEmptyCache>>(env, "cpuEmptyCache"));
  static std::once_flag once;  // the addon is loaded again by each worker thread
  std::call_once(once, [] {
    if (const char* env = std::getenv("SWAV_CPU_CACHE")) {
      char* end = nullptr;
      const long mib = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && mib >= 0) {
        if (mib == 0) return;
        margin = static_cast<size_t>(mib) << 20;
      }
    }
    c10::SetCPUAllocator(&instance(), /*priority=*/1);
  });
}

}  // namespace swav
