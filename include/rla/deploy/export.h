#pragma once
// Model export for other runtimes. What is exported is the network's inference form traced at an
// example input: with BatchNorms folded into the convolutions (InferenceOptions::portable, plain
// ATen operations only) or kept. The batch size stays free in every format.
//   * TorchScript: a module that `torch.jit.load` opens in Python and `torch::jit::load` in C++.
//   * ONNX (opset 13): written natively from the traced graph, no Python and no protobuf library;
//     runs in ONNX Runtime and OpenCV's dnn (docs/deploy.md).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rla/models/network.h"

namespace torch::jit {
struct Graph;
}

namespace rla::deploy {

/// Names of the ONNX graph's input ([batch, C, H, W]) and output ([batch, classes]).
inline constexpr const char* kOnnxInputName = "input";
inline constexpr const char* kOnnxOutputName = "logits";

struct ExportOptions {
  /// [C, H, W] of the example input the trace runs on (the batch size stays free).
  std::vector<int64_t> input_shape;
  /// Fold every BatchNorm into its convolution (false: the eval-mode graph with its BatchNorms).
  bool fold_batchnorm = true;
  /// ONNX only: a fixed batch size in the file's input and output shapes (0: a free "batch").
  /// Some runtimes want one (OpenCV 4.6 for squeeze-excitation models, TensorRT without profiles).
  int64_t onnx_batch = 0;
  /// Export the backbone instead of the classifier: the outputs are models::forward_features —
  /// the main path after every stage ("C2".."C5" for ImageNet ResNets, named by their stride),
  /// then the final state "h" with `with_state` (RLA nets).
  bool features = false;
  bool with_state = false;
};

/// The output names of an export: "logits", or the feature names (C<log2 stride>..., h).
std::vector<std::string> export_output_names(const torch::jit::Graph& graph, const ExportOptions& options);

/// The traced graph of `net`'s inference form (net itself is not modified: a copy is traced). Its
/// input is x [N, C, H, W]; its output is the logits [N, classes] (or the features, one graph
/// output each); the weights are constants.
/// Throws std::invalid_argument on a bad input shape, std::runtime_error when tracing fails.
std::shared_ptr<torch::jit::Graph> trace_inference_graph(const models::NetworkImpl& net,
                                                         const ExportOptions& options);

/// Writes `net` as a TorchScript archive to `path`, atomically. The module's forward takes float
/// [N, C, H, W] and returns the logits [N, classes] (features: a tuple of the feature maps).
void export_torchscript(const models::NetworkImpl& net, const std::string& path,
                        const ExportOptions& options);

/// Writes `net` as an ONNX model (opset 13, IR version 7, dynamic batch) to `path`, atomically.
/// Throws std::invalid_argument naming every operation that has no ONNX equivalent (no file is
/// written then).
void export_onnx(const models::NetworkImpl& net, const std::string& path, const ExportOptions& options);

/// The serialized ONNX ModelProto of a traced graph (what export_onnx writes): one input [N, …] of
/// floats, one output per graph output named by `outputs` (default: "logits"); N free, or fixed
/// when batch > 0. Throws std::invalid_argument naming every node kind it cannot translate.
std::string onnx_from_graph(const torch::jit::Graph& graph, int64_t batch = 0,
                            const std::vector<std::string>& outputs = {kOnnxOutputName});

}  // namespace rla::deploy
