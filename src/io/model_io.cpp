#include "rla/io/model_io.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <fstream>
#include <stdexcept>

#include "rla/data/image_io.h"
#include "rla/io/pytorch_archive.h"

namespace rla::io {

at::Tensor read_tensor_file(const std::string& path, const std::string& key) {
  const PyValue v = read_pytorch_file(path);
  if (v.is_tensor()) return v.to_tensor();
  if (v.is_dict()) {
    const PyValue* t = v.to_dict().find(key);
    if (t && t->is_tensor()) return t->to_tensor();
    throw std::runtime_error(fmt::format("{}: the dict has no tensor under '{}'", path, key));
  }
  throw std::runtime_error(
      fmt::format("{}: holds a {}, not a tensor or a dict with '{}'", path, v.type_name(), key));
}

void write_tensor_file(const std::string& path, const at::Tensor& tensor) {
  write_pytorch_file(path, PyValue::tensor(tensor));
}

ConvertReport convert_checkpoint(const std::string& in, const std::string& out,
                                 const StateDictOptions& options) {
  const auto sd = read_state_dict(in, options);
  ConvertReport r;
  r.tensors = sd.size();
  for (const auto& kv : sd) r.elements += kv.second.numel();
  write_state_dict(out, sd);
  return r;
}

std::vector<Prediction> top_k(const at::Tensor& logits, int64_t k, const std::vector<std::string>& labels) {
  TORCH_CHECK(logits.dim() == 1, "top_k expects logits [classes], got ", logits.sizes());
  const auto probs = torch::softmax(logits.to(torch::kDouble), 0);
  k = std::min<int64_t>(k, probs.numel());
  const auto [values, indices] = probs.topk(k);
  std::vector<Prediction> out;
  for (int64_t i = 0; i < k; ++i) {
    Prediction p;
    p.index = indices[i].item<int64_t>();
    p.probability = values[i].item<double>();
    p.label = p.index < static_cast<int64_t>(labels.size()) ? labels[p.index] : std::to_string(p.index);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("cannot open labels file '{}'", path));
  std::vector<std::string> labels;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

ImageInput image_input_for(const models::ModelEntry& entry, int64_t channels) {
  ImageInput in;
  in.channels = channels;
  in.size = entry.default_input().at(1);
  in.center_crop = entry.family == "imagenet";
  in.mean =
      in.center_crop ? std::vector<double>{0.485, 0.456, 0.406} : std::vector<double>{0.4914, 0.4822, 0.4465};
  in.std =
      in.center_crop ? std::vector<double>{0.229, 0.224, 0.225} : std::vector<double>{0.2470, 0.2435, 0.2616};
  return in;
}

at::Tensor load_image_input(const std::string& path, const ImageInput& in) {
  const int64_t size = in.size;
  TORCH_CHECK(
      in.mean.size() >= static_cast<size_t>(in.channels) && in.std.size() >= static_cast<size_t>(in.channels),
      "image input: ", in.channels, " channels but ", in.mean.size(), " means");
  auto image = data::read_image(path, static_cast<int>(in.channels)).to(torch::kFloat).div_(255.0);
  if (in.center_crop) {
    // Resize the short side to S / 0.875 (256 for 224), then centre-crop S x S.
    const int64_t h = image.size(1), w = image.size(2);
    const int64_t short_side = static_cast<int64_t>(std::lround(size / 0.875));
    const int64_t nh = h <= w ? short_side : std::max<int64_t>(1, h * short_side / w);
    const int64_t nw = h <= w ? std::max<int64_t>(1, w * short_side / h) : short_side;
    image = data::resize_image(image, nh, nw);
    const int64_t top = (nh - size) / 2, left = (nw - size) / 2;
    TORCH_CHECK(top >= 0 && left >= 0, path, ": image too small after resizing");
    image = image.slice(1, top, top + size).slice(2, left, left + size);
  } else {
    image = data::resize_image(image, size, size);
  }
  const auto m = torch::tensor(in.mean, torch::kFloat).narrow(0, 0, in.channels).view({-1, 1, 1});
  const auto s = torch::tensor(in.std, torch::kFloat).narrow(0, 0, in.channels).view({-1, 1, 1});
  return ((image - m) / s).unsqueeze(0).contiguous();
}

}  // namespace rla::io
