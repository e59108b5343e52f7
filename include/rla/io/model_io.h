#pragma once
// Tensors and images as model inputs and outputs: tensor files, image files made into inputs,
// top-k of logits, and the checkpoint-to-state-dict conversion (models load through
// inference::load_model).
#include <string>
#include <vector>

#include "rla/io/state_dict.h"
#include "rla/models/registry.h"

namespace rla::io {

/// A tensor from a torch.save file holding one tensor, or a dict with a tensor under `key`.
at::Tensor read_tensor_file(const std::string& path, const std::string& key = "input");

/// torch.save(tensor, path) (atomic).
void write_tensor_file(const std::string& path, const at::Tensor& tensor);

/// What `rla convert` reports.
struct ConvertReport {
  size_t tensors = 0;
  int64_t elements = 0;
};
/// Reads any supported checkpoint and writes its state dict alone, as an OrderedDict
/// (torch.save(model.state_dict()) layout) that torch.load(weights_only=True) reads.
ConvertReport convert_checkpoint(const std::string& in, const std::string& out,
                                 const StateDictOptions& options = {});

/// One line of a top-k listing.
struct Prediction {
  int64_t index = 0;
  double probability = 0.0;
  std::string label;  ///< from the labels file, else the index as text
};
/// Softmax of `logits` [classes] and its k most probable classes, best first.
std::vector<Prediction> top_k(const at::Tensor& logits, int64_t k,
                              const std::vector<std::string>& labels = {});

/// One label per line (blank lines kept as empty labels, so line i is class i).
std::vector<std::string> read_labels(const std::string& path);

/// How an image file becomes a model input.
struct ImageInput {
  int64_t channels = 3, size = 224;
  bool center_crop = true;        ///< Resize(size / 0.875) + CenterCrop(size); else a resize to size x size
  std::vector<double> mean, std;  ///< per channel (the first `channels` entries are used)
};
/// The defaults of a registered model: ImageNet models Resize + CenterCrop and ImageNet
/// mean/std; CIFAR-style models a resize to S x S and CIFAR-10 mean/std (S from
/// ModelEntry::default_input()).
ImageInput image_input_for(const models::ModelEntry& entry, int64_t channels = 3);
/// An image file (JPEG / PNG) as a model input [1, C, S, S].
at::Tensor load_image_input(const std::string& path, const ImageInput& input);

}  // namespace rla::io
