#pragma once
// The model zoo: every model name, its description and how to build it. Names equal the
// official / torchvision factory names (rla_resnet50, dsrla_mobilenetv2_k32, resnet50, ...).
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rla/models/network.h"
#include "rla/models/rla_cell.h"

namespace rla::models {

/// What a user may change when building a registered model; unset fields keep the model's
/// own default (1000 classes and 3 channels for ImageNet models, 10 and 3 for CIFAR-style).
/// A field a model does not have (k on a plain net, state_input on a DenseNet) must stay unset.
struct ModelConfig {
  std::optional<int64_t> num_classes;
  std::optional<int64_t> in_channels;
  std::optional<int64_t> rla_channels;  ///< k (RLA models only)
  std::optional<Aggregation> aggregation;
  /// ResNet family (plain and RLA): zero the weight of every residual branch's last BN, so each
  /// block starts as the identity (torchvision's zero_init_residual).
  std::optional<bool> zero_init_residual;
  std::optional<StateInput> state_input;  ///< RLA ResNets: what the cell reads as y
  bool channels_last = false;
};

struct ModelEntry {
  std::string name;
  std::string family;       ///< "imagenet" or "cifar"
  std::string description;  ///< one line
  bool rla = false;
  ModelConfig defaults;  ///< every field this model has, set to its default; the others unset
  /// Builds the model from a resolved config (resolve_config: every field of `defaults` set).
  std::function<Network(const ModelConfig&)> build;
  /// Default input [C, H, W]: 3x224x224 for ImageNet models, 3x32x32 for CIFAR-style ones.
  std::vector<int64_t> default_input() const;
};

/// Thrown for a name not in the registry; what() lists close matches (model_registry() has all).
class UnknownModelError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

const std::vector<ModelEntry>& model_registry();
const ModelEntry& find_model(const std::string& name);
/// `config` with every field the model has filled in from its defaults. Throws util::FieldError
/// naming the field (e.g. "rla_channels") when `config` sets a field the model does not have.
ModelConfig resolve_config(const ModelEntry& entry, const ModelConfig& config);
Network create_model(const std::string& name, const ModelConfig& config = {});
/// Registered names closest to `name` (edit distance), best first.
std::vector<std::string> close_model_names(const std::string& name, size_t max = 3);

}  // namespace rla::models
