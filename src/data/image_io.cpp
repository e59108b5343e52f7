#include "rla/data/image_io.h"

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "rla/util/file.h"

namespace rla::data {
namespace {

// Refuse headers that claim absurd sizes before allocating for them (a corrupt or hostile
// file must give an error, not an out-of-memory kill).
constexpr int64_t kMaxPixels = int64_t{1} << 28;

std::string errno_text() {
  return std::strerror(errno);
}

void check_dimensions(int64_t width, int64_t height, const std::string& name, const char* format) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0)
    throw DataError(name + ": corrupt " + format + " header (image size " + size + ")");
  if (width * height > kMaxPixels) throw DataError(name + ": implausible " + format + " image size " + size);
}

// ----------------------------------------------------------------------------------------------
// JPEG through libturbojpeg. Handles are per thread: a handle is not safe to share, and
// creating one per image would cost more than decoding a small image.

struct TjDeleter {
  void operator()(void* handle) const {
    if (handle) tjDestroy(handle);
  }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

tjhandle tj_decompressor() {
  thread_local TjHandle handle(tjInitDecompress());
  if (!handle) throw DataError(std::string("cannot initialise libturbojpeg: ") + tjGetErrorStr2(nullptr));
  return handle.get();
}

tjhandle tj_compressor() {
  thread_local TjHandle handle(tjInitCompress());
  if (!handle) throw DataError(std::string("cannot initialise libturbojpeg: ") + tjGetErrorStr2(nullptr));
  return handle.get();
}

ImageInfo jpeg_info(const uint8_t* data, size_t size, const std::string& name, int* colorspace) {
  tjhandle tj = tj_decompressor();
  int width = 0, height = 0, subsamp = 0, cs = 0;
  if (tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &width, &height, &subsamp, &cs) != 0) {
    throw DataError(name + ": corrupt JPEG header: " + tjGetErrorStr2(tj));
  }
  check_dimensions(width, height, name, "JPEG");
  if (colorspace) *colorspace = cs;
  return {ImageFormat::kJpeg, width, height, cs == TJCS_GRAY ? 1 : 3};
}

// libjpeg reports damaged entropy data as warnings and fills the rest of the image with grey:
// we must not pass that on (docs/data.md: never silent garbage). Other warnings (extraneous bytes
// between markers, odd APP segments: common in real photo collections) leave a correct image.
bool harmful_jpeg_warning(const std::string& message) {
  for (const char* pattern : {"remature end", "Huffman", "resync", "Corrupt JPEG data: premature"}) {
    if (message.find(pattern) != std::string::npos) return true;
  }
  return false;
}

// Decodes with stop-on-warning so damage is reported by its first warning; a harmless warning
// is followed by a second, tolerant decode.
void tj_decode(tjhandle tj, const uint8_t* data, size_t size, uint8_t* out, int w, int h, int pixel_format,
               const std::string& name) {
  const auto n = static_cast<unsigned long>(size);
  if (tjDecompress2(tj, data, n, out, w, 0, h, pixel_format, TJFLAG_STOPONWARNING) == 0) return;
  std::string message = tjGetErrorStr2(tj);
  const bool fatal = tjGetErrorCode(tj) == TJERR_FATAL;
  if (!fatal && !harmful_jpeg_warning(message)) {
    if (tjDecompress2(tj, data, n, out, w, 0, h, pixel_format, 0) == 0) return;
    message = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) != TJERR_FATAL && !harmful_jpeg_warning(message)) return;
  }
  const bool truncated = message.find("remature end of JPEG file") != std::string::npos;
  throw DataError(name + (truncated ? ": truncated JPEG data: " : ": corrupt JPEG data: ") + message);
}

torch::Tensor decode_jpeg(const uint8_t* data, size_t size, const std::string& name, int channels) {
  int cs = 0;
  const ImageInfo info = jpeg_info(data, size, name, &cs);
  tjhandle tj = tj_decompressor();
  const int out_c = channels == 0 ? static_cast<int>(info.channels) : channels;
  const auto w = static_cast<int>(info.width), h = static_cast<int>(info.height);
  if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
    // libjpeg cannot convert CMYK to RGB itself. Photoshop-style (inverted) CMYK, as PIL reads it.
    auto cmyk = torch::empty({h, w, 4}, torch::kUInt8);
    tj_decode(tj, data, size, cmyk.data_ptr<uint8_t>(), w, h, TJPF_CMYK, name);
    auto f = cmyk.to(torch::kFloat32);
    auto rgb = (f.slice(2, 0, 3) * f.slice(2, 3, 4) / 255.0).round().to(torch::kUInt8).permute({2, 0, 1});
    if (out_c == 1) {
      auto grey =
          (rgb.to(torch::kFloat32) * torch::tensor({0.299f, 0.587f, 0.114f}).view({3, 1, 1})).sum(0, true);
      return grey.round().clamp(0, 255).to(torch::kUInt8);
    }
    return rgb.contiguous();
  }
  auto hwc = torch::empty({h, w, out_c}, torch::kUInt8);
  tj_decode(tj, data, size, hwc.data_ptr<uint8_t>(), w, h, out_c == 1 ? TJPF_GRAY : TJPF_RGB, name);
  return hwc.permute({2, 0, 1}).contiguous();
}

// ----------------------------------------------------------------------------------------------
// PNG through libpng. libpng reports errors by calling our error function, which must not
// return: it longjmps back to the setjmp in png_read_header / png_read_pixels. Those two
// functions therefore hold no C++ objects with destructors; everything that needs cleanup is
// owned by their callers.

struct PngContext {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char error[256] = {0};
  char warning[256] = {0};
};

void png_on_error(png_structp png, png_const_charp message) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(ctx->error, sizeof(ctx->error), "%s", message);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp png, png_const_charp message) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  if (ctx->warning[0] == 0) std::snprintf(ctx->warning, sizeof(ctx->warning), "%s", message);
}

void png_read_memory(png_structp png, png_bytep out, size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (n > ctx->size - ctx->pos) png_error(png, "truncated PNG data (file ends early)");
  std::memcpy(out, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

struct PngLayout {
  png_uint_32 width = 0, height = 0;
  int stored_channels = 0, channels = 0;
  size_t rowbytes = 0;
};

// channels: -1 header only; 0 keep grey/colour; 1 grey; 3 RGB. Returns non-zero on error.
int png_read_header(png_structp png, png_infop info, int channels, PngLayout* out) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_read_info(png, info);
  int depth = 0, color_type = 0;
  png_get_IHDR(png, info, &out->width, &out->height, &depth, &color_type, nullptr, nullptr, nullptr);
  out->stored_channels = (color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
  if (channels < 0) return 0;
  const int want = channels == 0 ? out->stored_channels : channels;
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  if (want == 3 && out->stored_channels == 1) png_set_gray_to_rgb(png);
  if (want == 1 && out->stored_channels == 3) png_set_rgb_to_gray_fixed(png, 1, -1, -1);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->channels = png_get_channels(png, info);
  out->rowbytes = png_get_rowbytes(png, info);
  return 0;
}

int png_read_pixels(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return 0;
}

struct PngReader {
  PngContext ctx;
  png_structp png = nullptr;
  png_infop info = nullptr;

  PngReader(const uint8_t* data, size_t size, const std::string& name) {
    ctx.data = data;
    ctx.size = size;
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) throw DataError(name + ": cannot initialise libpng");
    png_set_read_fn(png, &ctx, png_read_memory);
  }
  ~PngReader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
  PngReader(const PngReader&) = delete;
  PngReader& operator=(const PngReader&) = delete;
};

torch::Tensor decode_png(const uint8_t* data, size_t size, const std::string& name, int channels,
                         ImageInfo* info_only) {
  PngReader reader(data, size, name);
  PngLayout layout;
  if (png_read_header(reader.png, reader.info, info_only ? -1 : channels, &layout) != 0) {
    throw DataError(name + ": corrupt PNG data: " + reader.ctx.error);
  }
  check_dimensions(layout.width, layout.height, name, "PNG");
  if (info_only) {
    *info_only = {ImageFormat::kPng, layout.width, layout.height, layout.stored_channels};
    return {};
  }
  const int want = channels == 0 ? layout.stored_channels : channels;
  if (layout.channels != want || layout.rowbytes != size_t(layout.width) * want) {
    throw DataError(name + ": unsupported PNG pixel layout (" + std::to_string(layout.channels) +
                    " channels)");
  }
  auto hwc = torch::empty({int64_t(layout.height), int64_t(layout.width), want}, torch::kUInt8);
  std::vector<png_bytep> rows(layout.height);
  for (png_uint_32 y = 0; y < layout.height; ++y) rows[y] = hwc.data_ptr<uint8_t>() + y * layout.rowbytes;
  if (png_read_pixels(reader.png, reader.info, rows.data()) != 0) {
    throw DataError(name + ": corrupt PNG data: " + reader.ctx.error);
  }
  if (std::strstr(reader.ctx.warning, "image data") != nullptr) {
    throw DataError(name + ": corrupt PNG data: " + reader.ctx.warning);
  }
  return hwc.permute({2, 0, 1}).contiguous();
}

// ----------------------------------------------------------------------------------------------
// Encoding.

// uint8 [C,H,W] / [H,W,C] / [H,W] -> contiguous uint8 [H, W, C] with C in {1, 3, 4}.
torch::Tensor to_hwc(const torch::Tensor& image) {
  TORCH_CHECK(image.defined() && image.scalar_type() == torch::kUInt8,
              "image encoding expects uint8 pixels, got ",
              image.defined() ? c10::toString(image.scalar_type()) : "an undefined tensor");
  auto t = image.cpu();
  auto ok = [](int64_t c) { return c == 1 || c == 3 || c == 4; };
  if (t.dim() == 2) {
    t = t.unsqueeze(2);
  } else if (t.dim() == 3 && ok(t.size(0))) {
    t = t.permute({1, 2, 0});
  } else {
    TORCH_CHECK(t.dim() == 3 && ok(t.size(2)),
                "image encoding expects [C,H,W], [H,W,C] (C = 1, 3 or 4) or [H,W], got ", t.sizes());
  }
  TORCH_CHECK(t.size(0) > 0 && t.size(1) > 0 && t.size(0) * t.size(1) <= kMaxPixels,
              "image encoding: bad size ", t.sizes());
  return t.contiguous();
}

void png_write_memory(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void png_flush_nothing(png_structp) {}

int png_write_all(png_structp png, png_infop info, const PngLayout& layout, int color_type, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_set_IHDR(png, info, layout.width, layout.height, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return 0;
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(path + ": cannot open (" + errno_text() + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DataError(path + ": not a regular file");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_text() : "file shrank while reading";
      ::close(fd);
      throw DataError(path + ": read failed (" + why + ")");
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return bytes;
}

ImageInfo decode_image_info(const uint8_t* data, size_t size, const std::string& name) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return jpeg_info(data, size, name, nullptr);
    case ImageFormat::kPng: {
      ImageInfo info;
      decode_png(data, size, name, 0, &info);
      return info;
    }
    default:
      throw DataError(name + (size == 0 ? ": empty file" : ": not a JPEG or PNG image"));
  }
}

ImageInfo read_image_info(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  return decode_image_info(bytes.data(), bytes.size(), path);
}

torch::Tensor decode_image(const uint8_t* data, size_t size, const std::string& name, int channels) {
  TORCH_CHECK(channels == 0 || channels == 1 || channels == 3,
              "decode_image: channels must be 0, 1 or 3, got ", channels);
  switch (sniff_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return decode_jpeg(data, size, name, channels);
    case ImageFormat::kPng:
      return decode_png(data, size, name, channels, nullptr);
    default:
      throw DataError(name + (size == 0 ? ": empty file" : ": not a JPEG or PNG image"));
  }
}

torch::Tensor read_image(const std::string& path, int channels) {
  const auto bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path, channels);
}

std::vector<uint8_t> encode_png(const torch::Tensor& image) {
  const auto hwc = to_hwc(image);
  PngLayout layout;
  layout.height = static_cast<png_uint_32>(hwc.size(0));
  layout.width = static_cast<png_uint_32>(hwc.size(1));
  const auto c = hwc.size(2);
  const int color_type = c == 1   ? PNG_COLOR_TYPE_GRAY
                         : c == 3 ? PNG_COLOR_TYPE_RGB
                                  : PNG_COLOR_TYPE_RGB_ALPHA;
  std::vector<png_bytep> rows(layout.height);
  auto* base = const_cast<uint8_t*>(hwc.data_ptr<uint8_t>());
  for (png_uint_32 y = 0; y < layout.height; ++y) rows[y] = base + y * layout.width * c;

  PngContext ctx;
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(hwc.numel()) / 2 + 1024);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (png && info) {
    png_set_write_fn(png, &out, png_write_memory, png_flush_nothing);
    png_set_compression_level(png, 6);
  }
  const int rc = (png && info) ? png_write_all(png, info, layout, color_type, rows.data()) : 1;
  png_destroy_write_struct(&png, info ? &info : nullptr);
  if (rc != 0) throw DataError(std::string("PNG encoding failed: ") + ctx.error);
  return out;
}

std::vector<uint8_t> encode_jpeg(const torch::Tensor& image, int quality) {
  auto hwc = to_hwc(image);
  if (hwc.size(2) == 4) hwc = hwc.slice(2, 0, 3).contiguous();
  const bool grey = hwc.size(2) == 1;
  tjhandle tj = tj_compressor();
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj, hwc.data_ptr<uint8_t>(), static_cast<int>(hwc.size(1)), 0,
                             static_cast<int>(hwc.size(0)), grey ? TJPF_GRAY : TJPF_RGB, &buffer, &size,
                             grey ? TJSAMP_GRAY : TJSAMP_420, quality, 0);
  if (rc != 0) {
    tjFree(buffer);
    throw DataError(std::string("JPEG encoding failed: ") + tjGetErrorStr2(tj));
  }
  std::vector<uint8_t> out(buffer, buffer + size);
  tjFree(buffer);
  return out;
}

void write_png(const std::string& path, const torch::Tensor& image) {
  const auto bytes = encode_png(image);
  util::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void write_jpeg(const std::string& path, const torch::Tensor& image, int quality) {
  const auto bytes = encode_jpeg(image, quality);
  util::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

torch::Tensor resize_image(const torch::Tensor& image, int64_t height, int64_t width) {
  TORCH_CHECK(image.dim() == 3 && image.is_floating_point(),
              "resize_image expects a float [C, H, W] image, got ", image.scalar_type(), " ", image.sizes());
  TORCH_CHECK(height > 0 && width > 0, "resize_image: bad target size ", height, "x", width);
  if (image.size(1) == height && image.size(2) == width) return image;
  namespace F = torch::nn::functional;
  return F::interpolate(image.unsqueeze(0), F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{height, width})
                                                .mode(torch::kBilinear)
                                                .align_corners(false))
      .squeeze(0);
}

}  // namespace rla::data
