#pragma once
// The int8 graph behind inference::QuantizedNetwork (internal to src/inference): an interpreter over
// the traced inference graph. Each node runs through its own JIT operation, except 2-D
// convolutions, residual adds, concatenations, the RLA state update and pooling, which run as
// uint8 kernels (quantized_graph.cpp); save and load are in quantized_io.cpp. A value is held as
// float or uint8 and converted where a consumer needs the other.
#include <torch/csrc/jit/ir/ir.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "rla/inference/int8_conv.h"
#include "rla/inference/quantized.h"
#include "rla/io/pytorch_archive.h"
#include "rla/util/env.h"

namespace rla::inference {

/// The int8 file's "format" entry and its version.
inline constexpr const char* kInt8Format = "rla-int8";
inline constexpr int64_t kInt8FormatVersion = 1;

/// The quantized op `name.overload` from LibTorch's dispatcher; throws when this LibTorch lacks it.
c10::OperatorHandle quantized_op(const char* name, const char* overload);
/// Calls a boxed op and returns its first output.
c10::IValue call(const c10::OperatorHandle& op, torch::jit::Stack stack);

class QuantizedGraph {
 public:
  using Node = torch::jit::Node;
  using Value = torch::jit::Value;
  enum class Kind { kGeneric, kConv, kAdd, kCat, kList, kStateUpdate, kTanh, kMaxPool, kAvgPool };
  struct Step {
    Kind kind = Kind::kGeneric;
    const Node* node = nullptr;
    std::vector<int> inputs;  ///< value ids of the node's inputs
    std::vector<int> parts;   ///< kCat: value ids of the concatenated tensors
    int output = -1;          ///< the value this step defines (a fused ReLU's output for kConv/kAdd)
    bool keeps_quantized = false;
    bool fused_relu = false;
    mutable std::optional<torch::jit::Operation> op;  // the node's own (float) operation
    // kConv: the float weight's constant id, its settings and, once finalized, the packed weights.
    int weight = -1, bias = -1;
    std::vector<int64_t> stride, padding, dilation;
    std::vector<int64_t> kernel;                       ///< kMaxPool, kAvgPool (with stride and padding)
    bool ceil_mode = false, count_include_pad = true;  ///< kAvgPool
    int64_t groups = 1;
    at::Tensor qweight;
    c10::IValue packed;
    std::shared_ptr<int8::PreparedConv> prepared;  ///< kConv: the oneDNN primitive, when it applies
    /// kConv whose only user is a residual add (kAdd): the convolution with the add (and the add's
    /// ReLU) as oneDNN post-ops, the residual's value id and the add's output id. The add step then
    /// finds its output written and is skipped.
    std::shared_ptr<int8::PreparedConv> prepared_sum;
    int residual = -1, sum_output = -1;
    int64_t cat_dim = 1;
    // kStateUpdate: the ids of a and h in tanh(a + h * factor) and the constant factor's id.
    int state_a = -1, state_h = -1, state_factor = -1;
  };

  /// Traces net's inference graph (BatchNorms folded) at inputs [N] + input_shape and plans it.
  QuantizedGraph(const models::NetworkImpl& net, std::vector<int64_t> input_shape);

  torch::Tensor run(const torch::Tensor& x, bool quantized);
  void finalize();
  void save(const std::string& path, const std::string& model) const;
  void load(const io::PyValue& file, const std::string& path);
  QuantizedNetwork::Counts counts() const;

  std::vector<int64_t> input_shape_;
  int64_t calibrated_ = 0;
  bool finalized_ = false;

 private:
  int id(const Value* v) const { return ids_.at(v); }
  void build();
  void plan_node(const Node* n);
  /// For addcmul(a, h, factor) (value 1) whose only user is a tanh, with a and h tensors of one
  /// shape and factor a constant with one value per channel: the ids of a, h and factor.
  std::optional<std::tuple<int, int, int>> state_update(const Node* n) const;
  /// For a pooling step whose arguments after x are constants with 2-element kernel, stride and
  /// padding: fills s.kernel, s.stride and s.padding and returns true.
  bool pool_window(Step& s) const;
  at::Tensor quantize(int value, const c10::IValue& v) const;
  void record(int value, const c10::IValue& v);
  void set_qparams(int value);
  struct RunCounts {
    int64_t prepared = 0, sums = 0;
  };
  /// A kConv step on uint8 values: the prepared primitive (with the residual add fused where
  /// fuse_residual_adds planned it), else quantized::conv2d. Returns the add's output id when the
  /// add ran fused (the add step is then skipped), else -1.
  int run_conv(const Step& s, std::vector<c10::IValue>& values, RunCounts& counts) const;
  /// A value concatenated in exactly one place takes the concatenation's scale and zero point (its
  /// calibrated range lies inside the concatenation's), so that the concatenation copies it
  /// instead of requantizing it: the RLA block's x and h are written by their producers in the
  /// scale that conv1 reads.
  void share_concat_qparams();
  /// Prepacks every int8 convolution's weights and bias and prepares its oneDNN primitive (with the
  /// residual add fused where the convolution feeds only that add); the graph is then ready to run.
  void pack_convolutions();
  /// The residual adds that can run as their convolution's post-op (Step::prepared_sum).
  void fuse_residual_adds();

  std::shared_ptr<torch::jit::Graph> graph_;
  std::unordered_map<const Value*, int> ids_;
  std::vector<c10::IValue> constants_;  ///< per value id: the constant, or None
  std::vector<bool> is_constant_;
  std::vector<Step> steps_;
  std::set<const Node*> absorbed_;  ///< ReLUs and tanhs whose output the step before them writes
  std::vector<float> lo_, hi_;      ///< calibrated ranges per value id
  std::vector<double> scale_;       ///< 0: not quantized
  std::vector<int64_t> zero_point_;
  int input_ = 0, output_ = 0;
  std::atomic<int64_t> prepared_runs_{0};  ///< convolutions the last int8 forward ran prepared
  std::atomic<int64_t> sum_runs_{0};       ///< of them, with the residual add fused
  /// The RLA state update and tanh on uint8 tensors (int8::state_update, int8::tanh) and the shared
  /// concatenation scales (share_concat_qparams); off with RLA_FUSED_INT8_STATE=0, which runs the
  /// update in float and requantizes every concatenated part (the A/B and the parity reference).
  bool fuse_state_ = util::env_switch_on("RLA_FUSED_INT8_STATE");
};

}  // namespace rla::inference
