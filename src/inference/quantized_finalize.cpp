// The int8 graph's finalization (quantized_graph.h): activation scales from the calibrated ranges,
// shared concatenation scales, int8 weights packed for quantized::conv2d and prepared as oneDNN
// primitives (inference/int8_conv.h), residual adds fused into their convolutions.
#include "quantized_graph.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace rla::inference {

namespace {

/// A convolution step's float bias, or an undefined tensor.
at::Tensor bias_of(const QuantizedGraph::Step& s, const std::vector<c10::IValue>& constants) {
  if (s.bias < 0 || !constants[s.bias].isTensor()) return {};
  return constants[s.bias].toTensor();
}

}  // namespace

void QuantizedGraph::set_qparams(int value) {
  if (!(lo_[value] <= hi_[value])) return;  // never seen: stays float
  // The range must hold 0 exactly (zero padding, ReLU): MinMaxObserver's affine uint8 parameters.
  const double lo = std::min(0.0f, lo_[value]), hi = std::max(0.0f, hi_[value]);
  const double scale = std::max((hi - lo) / 255.0, 1e-8);
  scale_[value] = scale;
  zero_point_[value] = std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(-lo / scale)), 0, 255);
}

void QuantizedGraph::finalize() {
  if (calibrated_ == 0) throw std::logic_error("int8: finalize() needs calibration batches first");
  for (size_t v = 0; v < scale_.size(); ++v) set_qparams(static_cast<int>(v));
  if (fuse_state_) share_concat_qparams();
  for (auto& s : steps_) {
    if (s.kind == Kind::kConv && !s.qweight.defined()) {
      // Symmetric per output channel, zero point 0 (what oneDNN's and QNNPACK's kernels expect).
      const auto w = constants_[s.weight].toTensor().to(torch::kFloat);
      const auto scales = (w.abs().amax({1, 2, 3}) / 127.0).clamp_min(1e-8).to(torch::kDouble);
      s.qweight = at::quantize_per_channel(w, scales, torch::zeros_like(scales, torch::kLong), 0, at::kQInt8);
    }
  }
  pack_convolutions();
}

void QuantizedGraph::share_concat_qparams() {
  std::unordered_map<int, int> concatenations;  // per value: how many concatenations read it
  for (const auto& s : steps_)
    if (s.kind == Kind::kCat)
      for (int v : s.parts) ++concatenations[v];
  for (const auto& s : steps_) {
    if (s.kind != Kind::kCat || scale_[s.output] == 0.0) continue;
    for (int v : s.parts) {
      if (concatenations[v] != 1 || v == input_ || scale_[v] == 0.0) continue;
      scale_[v] = scale_[s.output];
      zero_point_[v] = zero_point_[s.output];
    }
  }
}

void QuantizedGraph::pack_convolutions() {
  static const auto prepack = quantized_op("quantized::conv2d_prepack", "");
  for (auto& s : steps_) {
    if (s.kind != Kind::kConv) continue;
    const auto bias = bias_of(s, constants_);
    s.packed = call(prepack, {s.qweight, bias.defined() ? c10::IValue(bias) : c10::IValue(), s.stride,
                              s.padding, s.dilation, s.groups});
    // The same convolution as a prepared oneDNN primitive, where its input is a uint8 value; the
    // packed weights stay for the inputs it does not take.
    const int in = s.inputs[0];
    s.prepared.reset();
    if (scale_[in] != 0.0 && scale_[s.output] != 0.0)
      s.prepared = int8::PreparedConv::create(
          s.qweight, bias, s.stride, s.padding, s.dilation, s.groups,
          {scale_[in], zero_point_[in], scale_[s.output], zero_point_[s.output], s.fused_relu});
  }
  fuse_residual_adds();
  finalized_ = true;
}

void QuantizedGraph::fuse_residual_adds() {
  std::unordered_map<int, size_t> producer;  // value id -> the step that writes it
  for (size_t i = 0; i < steps_.size(); ++i) producer[steps_[i].output] = i;
  for (auto& s : steps_) {
    s.prepared_sum.reset();
    s.residual = s.sum_output = -1;
  }
  if (!int8::fused_int8_adds_enabled()) return;
  for (const auto& add : steps_) {
    if (add.kind != Kind::kAdd || scale_[add.output] == 0.0) continue;
    for (const int j : {0, 1}) {
      const int conv_out = add.inputs[j], residual = add.inputs[1 - j];
      const auto c = producer.find(conv_out);
      if (c == producer.end()) continue;
      auto& conv = steps_[c->second];
      if (conv.kind != Kind::kConv || conv.fused_relu || conv.node->output()->uses().size() != 1) continue;
      // The residual must exist when the convolution runs.
      const auto r = producer.find(residual);
      if (residual != input_ && (r == producer.end() || r->second >= c->second)) continue;
      const int in = conv.inputs[0];
      if (scale_[in] == 0.0 || scale_[residual] == 0.0) continue;
      int8::Int8ConvUnits units{scale_[in], zero_point_[in], scale_[add.output], zero_point_[add.output],
                                add.fused_relu};
      units.residual_scale = scale_[residual];
      units.residual_zero_point = zero_point_[residual];
      conv.prepared_sum = int8::PreparedConv::create(conv.qweight, bias_of(conv, constants_), conv.stride,
                                                     conv.padding, conv.dilation, conv.groups, units);
      if (!conv.prepared_sum) continue;
      conv.residual = residual;
      conv.sum_output = add.output;
      break;
    }
  }
}

}  // namespace rla::inference
