// The swav native addon: libtorch reached from Node through the c10 dispatcher. Each concern has its file:
// tensor_handle (ownership), convert (JS <-> IValue), dispatch (generic operator calls), data (bytes and
// metadata), runtime (threads, seeds, devices, autograd, autocast), profiler, jpeg (image decoding), allocator (a caching CPU allocator),
// fused (steps done in one call where per-call cost dominates), and where libtorch has c10d over Gloo: dist (stores, process groups, collectives), ddp (the gradient reducer),
// sync_batch_norm.
#include <napi.h>

namespace swav {
void initTensorHandle(Napi::Env env, Napi::Object exports);
void initDispatch(Napi::Env env, Napi::Object exports);
void initData(Napi::Env env, Napi::Object exports);
void initRuntime(Napi::Env env, Napi::Object exports);
void initProfiler(Napi::Env env, Napi::Object exports);
void initJpeg(Napi::Env env, Napi::Object exports);
void initAllocator(Napi::Env env, Napi::Object exports);
void initFused(Napi::Env env, Napi::Object exports);
#ifdef SWAV_HAS_C10D
void initDist(Napi::Env env, Napi::Object exports);
void initDdp(Napi::Env env, Napi::Object exports);
void initSyncBatchNorm(Napi::Env env, Napi::Object exports);
#endif
}  // namespace swav

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  swav::initAllocator(env, exports);
  swav::initTensorHandle(env, exports);
  swav::initDispatch(env, exports);
  swav::initData(env, exports);
  swav::initRuntime(env, exports);
  swav::initProfiler(env, exports);
  swav::initJpeg(env, exports);
  swav::initFused(env, exports);
#ifdef SWAV_HAS_C10D
  swav::initDist(env, exports);
  swav::initDdp(env, exports);
  swav::initSyncBatchNorm(env, exports);
#endif
  return exports;
}

NODE_API_MODULE(swav_native, Init)
