// JPEG decoding with libjpeg(-turbo), the library PIL decodes with: with its defaults (accurate integer IDCT,
// fancy upsampling) the pixels are those of the reference's Image.open(f).convert('RGB'), at a fraction of the
// cost of a libvips pipeline per image. Built where jpeglib.h is found (SWAV_HAS_LIBJPEG); elsewhere the export
// is absent and sharp decodes every file.
#include <napi.h>

#ifdef SWAV_HAS_LIBJPEG
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <jpeglib.h>
#endif

#include "errors.h"

namespace swav {

#ifdef SWAV_HAS_LIBJPEG
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool warned;
};

[[noreturn]] void onError(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  (*c->err->format_message)(c, e->message);
  longjmp(e->jump, 1);
}

// Warnings (corrupt or truncated data) count as failures: the caller then lets sharp judge the file.
void onMessage(j_common_ptr c, int level) {
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  if (level < 0 && !e->warned) {
    e->warned = true;
    (*c->err->format_message)(c, e->message);
  }
}

// A header may claim any size: beyond PIL's limit (its DecompressionBombError, 2 x Image.MAX_IMAGE_PIXELS; decode.ts
// gives sharp the same) the file is refused, not allocated.
constexpr unsigned long long kMaxPixels = 2 * 89478485ull;

struct Decoded {
  unsigned char* data;  // malloc'd, height x width x 3
  unsigned width, height;
  char message[JMSG_LENGTH_MAX];
};

// Plain C below setjmp: nothing with a destructor may live in this frame when libjpeg longjmps out.
bool decode(const unsigned char* src, size_t n, Decoded* out) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  out->data = nullptr;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = onError;
  err.pub.emit_message = onMessage;
  err.warned = false;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(out->data);
    out->data = nullptr;
    std::memcpy(out->message, err.message, sizeof err.message);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, src, static_cast<unsigned long>(n));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(out->message, sizeof out->message, "CMYK JPEG");
    return false;
  }
  if (static_cast<unsigned long long>(cinfo.image_width) * cinfo.image_height > kMaxPixels) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(out->message, sizeof out->message, "image too large (over %llu pixels)", kMaxPixels);
    return false;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);  // a progressive file's scans are all read here
  // A warning fails the file anyway: stop at the first, before (or while) filling a large image with gray.
  if (err.warned) {
    jpeg_destroy_decompress(&cinfo);
    std::memcpy(out->message, err.message, sizeof err.message);
    return false;
  }
  const size_t stride = static_cast<size_t>(cinfo.output_width) * 3;
  out->data = static_cast<unsigned char*>(std::malloc(stride * cinfo.output_height));
  if (!out->data) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(out->message, sizeof out->message, "out of memory");
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height && !err.warned) {
    JSAMPROW row = out->data + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  if (!err.warned) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (err.warned) {
    std::free(out->data);
    out->data = nullptr;
    std::memcpy(out->message, err.message, sizeof err.message);
    return false;
  }
  out->width = cinfo.output_width;
  out->height = cinfo.output_height;
  return true;
}

// decodeJpeg(bytes: Uint8Array) -> { data: Uint8Array (height x width x 3, RGB), width, height }. Throws with
// libjpeg's message on any error or warning, and for CMYK files.
Napi::Value decodeJpeg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "decodeJpeg expects a Uint8Array");
  auto bytes = info[0].As<Napi::Uint8Array>();
  Decoded d;
  if (!decode(bytes.Data(), bytes.ByteLength(), &d)) throw Napi::Error::New(env, std::string("JPEG: ") + d.message);
  const size_t size = static_cast<size_t>(d.width) * d.height * 3;
  auto data = Napi::Uint8Array::New(env, size);  // V8's own memory, so that it can be transferred between threads
  std::memcpy(data.Data(), d.data, size);
  std::free(d.data);
  auto result = Napi::Object::New(env);
  result.Set("data", data);
  result.Set("width", Napi::Number::New(env, d.width));
  result.Set("height", Napi::Number::New(env, d.height));
  return result;
}

}  // namespace
#endif

void initJpeg(Napi::Env env, Napi::Object exports) {
#ifdef SWAV_HAS_LIBJPEG
  exports.Set("decodeJpeg", Napi::Function::New<exported<decodeJpeg>>(env, "decodeJpeg"));
#endif
}

}  // namespace swav
