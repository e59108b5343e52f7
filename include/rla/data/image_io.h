#pragma once
// Image files: JPEG (libturbojpeg) and PNG (libpng) to and from uint8 [C, H, W] tensors.
// Every failure is a DataError whose message starts with the file's name (docs/data.md).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rla/data/dataset.h"

namespace rla::data {

enum class ImageFormat { kUnknown, kJpeg, kPng };

/// Recognises a format by its signature bytes (JPEG: FF D8 FF; PNG: 89 'PNG' 0D 0A 1A 0A).
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

/// Size and channels as stored (1 = grey, 3 = colour; alpha and palettes not counted).
struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int64_t width = 0, height = 0, channels = 0;
};

/// Reads a whole file; DataError "<path>: cannot open (<reason>)" when it cannot.
std::vector<uint8_t> read_file_bytes(const std::string& path);

/// Parses only the header of an encoded image. `name` is used in error messages.
ImageInfo decode_image_info(const uint8_t* data, size_t size, const std::string& name);
ImageInfo read_image_info(const std::string& path);

/// Decodes a JPEG or PNG held in memory into uint8 [C, H, W]. channels: 0 keeps the stored
/// layout (grey -> 1, anything else -> 3), 1 converts to grey, 3 to RGB (like PIL's
/// convert('RGB'): alpha is dropped, palettes expanded, 16-bit scaled to 8-bit).
/// `name` (usually the path) starts every error message.
torch::Tensor decode_image(const uint8_t* data, size_t size, const std::string& name, int channels = 0);
/// decode_image on the contents of `path`.
torch::Tensor read_image(const std::string& path, int channels = 0);

/// Encodes uint8 [C, H, W] (C = 1, 3 or 4) or [H, W, C] (C = 1, 3 or 4, decided when dim 0 is
/// not 1, 3 or 4) or [H, W] as PNG / JPEG bytes. JPEG drops a fourth (alpha) channel.
std::vector<uint8_t> encode_png(const torch::Tensor& image);
std::vector<uint8_t> encode_jpeg(const torch::Tensor& image, int quality = 90);

/// encode_png / encode_jpeg, then util::write_file_atomic (a reader never sees half a file).
void write_png(const std::string& path, const torch::Tensor& image);
void write_jpeg(const std::string& path, const torch::Tensor& image, int quality = 90);

/// Bilinear resize of a float image [C, H, W] to [C, height, width] (align_corners=False, no
/// antialias: torch.nn.functional.interpolate(mode='bilinear')).
torch::Tensor resize_image(const torch::Tensor& image, int64_t height, int64_t width);

}  // namespace rla::data
