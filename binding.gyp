{
  "targets": [{
    "target_name": "swav_native",
    "variables": {"c10d": "<!(node scripts/find-c10d.mjs --found)"},
    "sources": [
      "native/addon.cc",
      "native/tensor_handle.cc",
      "native/convert.cc",
      "native/dispatch.cc",
      "native/data.cc",
      "native/runtime.cc",
      "native/profiler.cc",
      "native/jpeg.cc",
      "native/allocator.cc",
      "native/fused.cc"
    ],
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "<!@(node scripts/find-libtorch.mjs --include)"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "<!@(node scripts/find-libtorch.mjs --defines)", "<!@(node scripts/find-libjpeg.mjs --defines)"],
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fopenmp", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
    "ldflags": ["-fopenmp"],
    "libraries": [
      "-L<!(node scripts/find-libtorch.mjs --libdir)",
      "-Wl,-rpath,<!(node scripts/find-libtorch.mjs --libdir)",
      "-Wl,--no-as-needed",
      "<!@(node scripts/find-libtorch.mjs --libs)",
      "<!@(node scripts/find-libjpeg.mjs --libs)"
    ],
    "conditions": [["c10d==1", {
      "sources": ["native/dist.cc", "native/ddp.cc", "native/sync_batch_norm.cc"],
      "defines": ["<!@(node scripts/find-c10d.mjs --defines)"],
      "include_dirs": ["<!@(node scripts/find-c10d.mjs --includes)"],
      "libraries": ["<!@(node scripts/find-c10d.mjs --libs)"]
    }]]
  }]
}
