#pragma once
// Post-training int8 quantization (PyTorch's eager "static quantization" recipe, done on the traced
// graph instead of on modules): the network's inference form with BatchNorms folded
// (deploy/export.h trace_inference_graph) runs on LibTorch's quantized CPU engine — oneDNN where the
// build has it, else QNNPACK.
//   * 2-D convolutions: int8 weights, symmetric per output channel; a ReLU that follows is fused.
//   * Activations: uint8, one affine scale/zero point per tensor from the min/max seen on
//     calibration batches (MinMaxObserver); residual adds and channel concatenations stay in uint8.
//   * The RLA state update tanh(conv_out(y) + h * bn_scale) reads and writes uint8 in one pass
//     (a tanh alone: a 256-entry table); RLA_FUSED_INT8_STATE=0 runs it in float instead.
//   * Max and average pooling run on the uint8 codes (max pooling exactly: the code map is increasing).
//   * Every other op — the state's average pooling, SE/ECA gates, the classifier — runs in float
//     between a dequantize and a quantize (docs/deploy.md measures it).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rla/data/loader.h"
#include "rla/models/network.h"

namespace rla::inference {

class QuantizedGraph;

class QuantizedNetwork {
 public:
  /// Traces `net` (not modified) at inputs [N, C, H, W] with input_shape = [C, H, W].
  QuantizedNetwork(const models::NetworkImpl& net, std::vector<int64_t> input_shape);
  ~QuantizedNetwork();
  QuantizedNetwork(QuantizedNetwork&&) noexcept;
  QuantizedNetwork& operator=(QuantizedNetwork&&) noexcept;

  /// Float forward of a calibration batch x [N, C, H, W]; records every activation's range.
  /// Returns the float logits [N, classes].
  torch::Tensor calibrate(const torch::Tensor& x);
  int64_t calibration_images() const;
  /// Quantizes the weights and fixes the activation scales from the ranges seen. Throws
  /// std::logic_error before any calibrate().
  void finalize();
  bool finalized() const;

  /// int8 forward: x [N, C, H, W] float -> logits [N, classes] float. Needs finalize() (or load).
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor operator()(const torch::Tensor& x) { return forward(x); }

  /// Writes the int8 model (int8 weights, float biases, activation scales; `model` names the
  /// registry entry it came from) to `path` atomically, as a torch.save-compatible archive.
  void save(const std::string& path, const std::string& model) const;
  /// Reads a file written by save() for the network `net` (same model and configuration: its
  /// structure is traced from `net`, its weights are the file's), registry entry `model` unless
  /// empty. Throws std::invalid_argument naming the file when it is missing, not an int8 model or
  /// belongs to another network.
  static QuantizedNetwork load(const std::string& path, const models::NetworkImpl& net,
                               const std::string& model = "");
  /// The model name and [C, H, W] input a file written by save() records.
  static std::pair<std::string, std::vector<int64_t>> describe(const std::string& path);

  struct Counts {
    int64_t int8_convolutions = 0;  ///< run on the quantized engine (ReLU fused: fused_relus)
    int64_t fused_relus = 0;
    int64_t int8_adds = 0, int8_concats = 0;
    int64_t int8_state_updates = 0;  ///< the RLA state's tanh(a + h * bn_scale) (or tanh) on uint8
    int64_t int8_pools = 0;          ///< max and average pooling on the uint8 codes
    int64_t float_ops = 0;           ///< ops that run in float between a dequantize and a quantize
    /// int8 convolutions that ran as prepared oneDNN primitives (inference/int8_conv.h) in the last
    /// int8 forward; the others ran through quantized::conv2d.
    int64_t prepared_convolutions = 0;
    /// Residual adds (with their ReLU) that ran in the last int8 forward as a post-op of the prepared
    /// convolution before them, in one rounding; the others ran as quantized::add(_relu).
    int64_t fused_adds = 0;
  };
  Counts counts() const;
  /// The quantized engine in use: "onednn" or "qnnpack".
  static std::string engine();

 private:
  std::unique_ptr<QuantizedGraph> graph_;
};

/// Quantizes `net` calibrated on the first `calibration_images` examples `loader` yields in epoch 0
/// (give it the training split with evaluation transforms, unshuffled). Throws
/// util::FieldError("calibration_images") when the loader has fewer examples or
/// calibration_images < kMinCalibrationImages.
inline constexpr int64_t kMinCalibrationImages = 32;
QuantizedNetwork quantize(const models::NetworkImpl& net, const std::vector<int64_t>& input_shape,
                          data::DataLoader& loader, int64_t calibration_images);

/// Where `rla quantize` writes the int8 model of a run folder or checkpoint by default:
/// <run>/model.int8.pt (a checkpoint's folder for a checkpoint).
std::string default_int8_path(const std::string& run_or_checkpoint);

}  // namespace rla::inference
