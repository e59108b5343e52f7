// The int8 graph's planning and execution (quantized_graph.h).
#include "quantized_graph.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/ir/constants.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "rla/deploy/export.h"
#include "rla/inference/int8_kernels.h"

namespace rla::inference {

using torch::jit::Node;
using torch::jit::Value;

namespace {

/// Ops that accept uint8 tensors and keep them uint8 (ATen's QuantizedCPU kernels).
const std::set<std::string>& quantized_passthrough() {
  // Not max_pool2d: LibTorch 1.13's quantized kernel miscomputes its output size for the stem's
  // 3x3/2 pooling; it runs on the uint8 codes instead (int8::max_pool2d). Not mean: its quantized
  // kernel dequantizes its whole input element by element (0.3 ms of resnet20's 2.8 ms at batch 32);
  // in float it reads the vectorized dequantize's output.
  static const std::set<std::string> kinds = {
      "aten::relu",    "aten::relu_",    "aten::avg_pool2d", "aten::flatten",    "aten::view",
      "aten::reshape", "aten::hardtanh", "aten::hardtanh_",  "aten::contiguous", "aten::adaptive_avg_pool2d",
  };
  return kinds;
}

bool is_relu(const Node* n) {
  const std::string k = n->kind().toQualString();
  return k == "aten::relu" || k == "aten::relu_";
}

/// The single ReLU consuming v, if v has no other use.
const Node* sole_relu_user(const Value* v) {
  return v->uses().size() == 1 && is_relu(v->uses()[0].user) ? v->uses()[0].user : nullptr;
}

bool same_shape_tensors(const Value* a, const Value* b) {
  const auto ta = a->type()->cast<c10::TensorType>(), tb = b->type()->cast<c10::TensorType>();
  if (!ta || !tb) return false;
  const auto sa = ta->sizes().concrete_sizes(), sb = tb->sizes().concrete_sizes();
  return sa && sb && *sa == *sb && sa->size() == 4;
}

bool all_ones(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 1; });
}

/// prim::ListConstruct: the values `ids` as one list IValue (tensors, ints, floats or bools).
c10::IValue make_list(const std::vector<int>& ids, const std::vector<c10::IValue>& values) {
  if (!ids.empty() && values[ids[0]].isTensor()) {
    std::vector<at::Tensor> list;
    for (int v : ids) list.push_back(values[v].toTensor());
    return c10::IValue(list);
  }
  if (!ids.empty() && values[ids[0]].isDouble()) {
    std::vector<double> list;
    for (int v : ids) list.push_back(values[v].toDouble());
    return c10::IValue(list);
  }
  if (!ids.empty() && values[ids[0]].isBool()) {
    c10::List<bool> list;
    for (int v : ids) list.push_back(values[v].toBool());
    return c10::IValue(list);
  }
  std::vector<int64_t> list;
  for (int v : ids) list.push_back(values[v].toInt());
  return c10::IValue(list);
}

c10::IValue dequantized(const c10::IValue& v) {
  if (v.isTensor()) {
    const auto& t = v.toTensor();
    return t.is_quantized() ? c10::IValue(int8::dequantize(t)) : v;
  }
  if (v.isTensorList()) {
    auto list = v.toTensorVector();
    for (auto& t : list)
      if (t.is_quantized()) t = int8::dequantize(t);
    return c10::IValue(list);
  }
  return v;
}

}  // namespace

c10::OperatorHandle quantized_op(const char* name, const char* overload) {
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) throw std::runtime_error(fmt::format("this LibTorch has no {}.{}", name, overload));
  return *handle;
}

c10::IValue call(const c10::OperatorHandle& op, torch::jit::Stack stack) {
  op.callBoxed(&stack);
  return stack.at(0);
}

QuantizedGraph::QuantizedGraph(const models::NetworkImpl& net, std::vector<int64_t> input_shape)
    : input_shape_(std::move(input_shape)) {
  deploy::ExportOptions options;
  options.input_shape = input_shape_;
  graph_ = deploy::trace_inference_graph(net, options);
  build();
}

void QuantizedGraph::build() {
  auto add_value = [this](const Value* v) {
    ids_[v] = static_cast<int>(constants_.size());
    constants_.emplace_back();
    is_constant_.push_back(false);
  };
  add_value(graph_->inputs().at(0));
  for (const auto* n : graph_->nodes())
    for (const auto* out : n->outputs()) add_value(out);
  input_ = id(graph_->inputs().at(0));
  output_ = id(graph_->outputs().at(0));
  for (const auto* n : graph_->nodes()) plan_node(n);
  lo_.assign(constants_.size(), std::numeric_limits<float>::infinity());
  hi_.assign(constants_.size(), -std::numeric_limits<float>::infinity());
  scale_.assign(constants_.size(), 0.0);
  zero_point_.assign(constants_.size(), 0);
}

void QuantizedGraph::plan_node(const Node* n) {
  const std::string kind = n->kind().toQualString();
  if (kind == "prim::Constant") {
    const int v = id(n->output());
    constants_[v] = *torch::jit::toIValue(n->output());
    is_constant_[v] = true;
    return;
  }
  if (absorbed_.count(n)) return;  // fused into the step before it, which writes its output
  Step s;
  s.node = n;
  for (const auto* in : n->inputs()) s.inputs.push_back(id(in));
  s.output = id(n->output());
  if (kind == "prim::ListConstruct") {
    const bool fixed =
        std::all_of(s.inputs.begin(), s.inputs.end(), [this](int v) { return is_constant_[v]; });
    if (fixed) {  // a constant list of ints, floats or bools: built once
      constants_[s.output] = make_list(s.inputs, constants_);
      is_constant_[s.output] = true;
      return;
    }
    s.kind = Kind::kList;
    steps_.push_back(std::move(s));
    return;
  }
  const auto constant_tensor = [this](int v) { return is_constant_[v] && constants_[v].isTensor(); };
  if (kind == "aten::_convolution" && constant_tensor(s.inputs[1]) &&
      constants_[s.inputs[1]].toTensor().dim() == 4 && !constants_[s.inputs[6]].toBool()) {
    s.kind = Kind::kConv;
    s.weight = s.inputs[1];
    s.bias = constants_[s.inputs[2]].isNone() ? -1 : s.inputs[2];
    s.stride = constants_[s.inputs[3]].toIntVector();
    s.padding = constants_[s.inputs[4]].toIntVector();
    s.dilation = constants_[s.inputs[5]].toIntVector();
    s.groups = constants_[s.inputs[8]].toInt();
  } else if ((kind == "aten::add" || kind == "aten::add_") && s.inputs.size() == 3 &&
             !is_constant_[s.inputs[0]] && !is_constant_[s.inputs[1]] &&
             same_shape_tensors(n->input(0), n->input(1)) && is_constant_[s.inputs[2]] &&
             constants_[s.inputs[2]].toScalar().toDouble() == 1.0) {
    s.kind = Kind::kAdd;  // a residual sum
  } else if (kind == "aten::cat" && n->input(0)->node()->kind() == c10::prim::ListConstruct &&
             is_constant_[s.inputs[1]]) {
    s.kind = Kind::kCat;
    s.cat_dim = constants_[s.inputs[1]].toInt();
    for (const auto* in : n->input(0)->node()->inputs()) s.parts.push_back(id(in));
  } else if (const auto state = state_update(n); state && fuse_state_) {
    s.kind = Kind::kStateUpdate;
    std::tie(s.state_a, s.state_h, s.state_factor) = *state;
    const auto* tanh = n->output()->uses()[0].user;
    absorbed_.insert(tanh);
    s.output = id(tanh->output());
  } else if ((kind == "aten::tanh" || kind == "aten::tanh_") && fuse_state_) {
    s.kind = Kind::kTanh;
  } else if (kind == "aten::max_pool2d" && s.inputs.size() == 6 && pool_window(s) &&
             all_ones(constants_[s.inputs[4]].toIntVector()) && !constants_[s.inputs[5]].toBool()) {
    s.kind =
        Kind::kMaxPool;  // on the uint8 codes (int8::max_pool2d); dilated or ceil-mode pools run in float
  } else if (kind == "aten::avg_pool2d" && s.inputs.size() == 7 && pool_window(s) &&
             constants_[s.inputs[6]].isNone()) {
    s.kind = Kind::kAvgPool;   // on the uint8 codes (int8::avg_pool2d)
    s.keeps_quantized = true;  // a float input runs the op itself
    s.ceil_mode = constants_[s.inputs[4]].toBool();
    s.count_include_pad = constants_[s.inputs[5]].toBool();
  } else {
    s.keeps_quantized = quantized_passthrough().count(kind) > 0;
  }
  try {
    s.op = n->getOperation();  // the float path (calibration) runs every step through it
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("int8: no operation for the traced node {}", kind));
  }
  if (s.kind == Kind::kConv || s.kind == Kind::kAdd) {
    if (const auto* relu = sole_relu_user(n->output())) {
      s.fused_relu = true;
      absorbed_.insert(relu);
      s.output = id(relu->output());
    }
  }
  steps_.push_back(std::move(s));
}

bool QuantizedGraph::pool_window(Step& s) const {
  // aten::max_pool2d / avg_pool2d: (x, kernel, stride, padding, ...), every argument after x fixed.
  if (!std::all_of(s.inputs.begin() + 1, s.inputs.end(), [this](int v) { return is_constant_[v]; }))
    return false;
  auto kernel = constants_[s.inputs[1]].toIntVector(), stride = constants_[s.inputs[2]].toIntVector(),
       padding = constants_[s.inputs[3]].toIntVector();
  if (kernel.size() != 2 || stride.size() != 2 || padding.size() != 2) return false;
  s.kernel = std::move(kernel);
  s.stride = std::move(stride);
  s.padding = std::move(padding);
  return true;
}

std::optional<std::tuple<int, int, int>> QuantizedGraph::state_update(const Node* n) const {
  const std::string kind = n->kind().toQualString();
  if ((kind != "aten::addcmul" && kind != "aten::addcmul_") || n->inputs().size() != 4) return std::nullopt;
  const auto uses = n->output()->uses();
  if (uses.size() != 1) return std::nullopt;
  const std::string user = uses[0].user->kind().toQualString();
  if (user != "aten::tanh" && user != "aten::tanh_") return std::nullopt;
  const int a = id(n->input(0)), t1 = id(n->input(1)), t2 = id(n->input(2)), value = id(n->input(3));
  if (!is_constant_[value] || constants_[value].toScalar().toDouble() != 1.0) return std::nullopt;
  const bool first_constant = is_constant_[t1] && constants_[t1].isTensor();
  const int h = first_constant ? t2 : t1, factor = first_constant ? t1 : t2;
  if (is_constant_[a] || is_constant_[h] || !is_constant_[factor] || !constants_[factor].isTensor())
    return std::nullopt;
  if (!same_shape_tensors(n->input(0), first_constant ? n->input(2) : n->input(1))) return std::nullopt;
  const auto channels = n->input(0)->type()->cast<c10::TensorType>()->sizes().concrete_sizes()->at(1);
  const auto& f = constants_[factor].toTensor();
  // One value per channel, broadcast over [N, k, H, W]: [k, 1, 1] or [1, k, 1, 1].
  if (f.numel() != channels || f.dim() < 3 || f.size(f.dim() - 3) != channels) return std::nullopt;
  return std::make_tuple(a, h, factor);
}

void QuantizedGraph::record(int value, const c10::IValue& v) {
  if (!v.isTensor()) return;
  const auto& t = v.toTensor();
  if (!t.is_floating_point() || t.numel() == 0) return;
  const auto [lo, hi] = at::aminmax(t);
  lo_[value] = std::min(lo_[value], lo.item<float>());
  hi_[value] = std::max(hi_[value], hi.item<float>());
}

at::Tensor QuantizedGraph::quantize(int value, const c10::IValue& v) const {
  const auto& t = v.toTensor();
  if (t.is_quantized()) return t;
  if (scale_[value] == 0.0) throw std::logic_error("int8 forward: a value was never calibrated");
  return int8::quantize(t, scale_[value], zero_point_[value]);
}

torch::Tensor QuantizedGraph::run(const torch::Tensor& x, bool quantized) {
  torch::NoGradGuard no_grad;
  static const auto add = quantized_op("quantized::add", "");
  static const auto add_relu = quantized_op("quantized::add_relu", "");
  static const auto cat = quantized_op("quantized::cat", "");
  std::vector<c10::IValue> values = constants_;
  values[input_] = x;
  // Whether the step's first input arrives as a uint8 tensor (the uint8 kernels need one).
  const auto quantized_input = [&values](const Step& s) {
    const auto& v = values[s.inputs[0]];
    return v.isTensor() && v.toTensor().is_quantized();
  };
  if (!quantized) record(input_, values[input_]);
  RunCounts counts;
  std::vector<bool> fused(values.size(), false);  // adds written by their convolution (as a post-op)
  for (const auto& s : steps_) {
    if (quantized && s.kind == Kind::kConv) {
      if (const int added = run_conv(s, values, counts); added >= 0) fused[added] = true;
    } else if (quantized && s.kind == Kind::kAdd && fused[s.output]) {
      continue;
    } else if (quantized && s.kind == Kind::kAdd) {
      values[s.output] = call(s.fused_relu ? add_relu : add, {quantize(s.inputs[0], values[s.inputs[0]]),
                                                              quantize(s.inputs[1], values[s.inputs[1]]),
                                                              scale_[s.output], zero_point_[s.output]});
    } else if (quantized && s.kind == Kind::kStateUpdate) {
      values[s.output] =
          int8::state_update(quantize(s.state_a, values[s.state_a]), quantize(s.state_h, values[s.state_h]),
                             constants_[s.state_factor].toTensor(), scale_[s.output], zero_point_[s.output]);
    } else if (quantized && s.kind == Kind::kTanh && quantized_input(s) && scale_[s.output] != 0.0) {
      values[s.output] = int8::tanh(values[s.inputs[0]].toTensor(), scale_[s.output], zero_point_[s.output]);
    } else if (quantized && s.kind == Kind::kMaxPool && quantized_input(s) &&
               values[s.inputs[0]].toTensor().dim() == 4) {
      values[s.output] = int8::max_pool2d(values[s.inputs[0]].toTensor(), s.kernel, s.stride, s.padding);
    } else if (quantized && s.kind == Kind::kAvgPool && quantized_input(s) &&
               values[s.inputs[0]].toTensor().dim() == 4) {
      values[s.output] = int8::avg_pool2d(values[s.inputs[0]].toTensor(), s.kernel, s.stride, s.padding,
                                          s.ceil_mode, s.count_include_pad);
    } else if (s.kind == Kind::kList) {
      values[s.output] = make_list(s.inputs, values);
    } else if (quantized && s.kind == Kind::kCat) {
      std::vector<at::Tensor> parts;
      for (int in : s.parts) parts.push_back(quantize(in, values[in]));
      const bool channels = parts.front().dim() == 4 && (s.cat_dim == 1 || s.cat_dim == -3);
      values[s.output] =
          channels ? int8::channel_cat(parts, scale_[s.output], zero_point_[s.output])
                   : call(cat, {c10::IValue(parts), s.cat_dim, scale_[s.output], zero_point_[s.output]});
    } else {
      torch::jit::Stack stack;
      for (int in : s.inputs)
        stack.push_back(quantized && !s.keeps_quantized ? dequantized(values[in]) : values[in]);
      (*s.op)(stack);
      // The float path of the fused steps.
      if (s.fused_relu) stack.back() = c10::IValue(stack.back().toTensor().relu());
      if (s.kind == Kind::kStateUpdate) stack.back() = c10::IValue(stack.back().toTensor().tanh());
      const auto outputs = s.node->outputs();
      for (size_t i = 0; i < outputs.size(); ++i)
        values[i == 0 ? s.output : id(outputs[i])] = std::move(stack.at(i));
    }
    if (!quantized) record(s.output, values[s.output]);
  }
  if (quantized) {
    prepared_runs_ = counts.prepared;
    sum_runs_ = counts.sums;
  }
  auto out = values[output_].toTensor();
  return out.is_quantized() ? int8::dequantize(out) : out;
}

int QuantizedGraph::run_conv(const Step& s, std::vector<c10::IValue>& values, RunCounts& counts) const {
  static const auto conv = quantized_op("quantized::conv2d", "new");
  static const auto conv_relu = quantized_op("quantized::conv2d_relu", "new");
  auto in = quantize(s.inputs[0], values[s.inputs[0]]);
  at::Tensor y;
  if (s.prepared_sum) {
    y = s.prepared_sum->run(in, quantize(s.residual, values[s.residual]));
    if (y.defined()) {
      values[s.sum_output] = std::move(y);
      ++counts.prepared;
      ++counts.sums;
      return s.sum_output;
    }
  }
  if (s.prepared) y = s.prepared->run(in);
  counts.prepared += y.defined();
  values[s.output] = y.defined() ? c10::IValue(std::move(y))
                                 : call(s.fused_relu ? conv_relu : conv,
                                        {std::move(in), s.packed, scale_[s.output], zero_point_[s.output]});
  return -1;
}

QuantizedNetwork::Counts QuantizedGraph::counts() const {
  QuantizedNetwork::Counts c;
  c.prepared_convolutions = prepared_runs_.load();
  c.fused_adds = sum_runs_.load();
  for (const auto& s : steps_) {
    const std::string kind = s.node->kind().toQualString();
    if (s.kind == Kind::kConv) {
      ++c.int8_convolutions;
      c.fused_relus += s.fused_relu;
    } else if (s.kind == Kind::kAdd) {
      ++c.int8_adds;
      c.fused_relus += s.fused_relu;
    } else if (s.kind == Kind::kCat) {
      ++c.int8_concats;
    } else if (s.kind == Kind::kStateUpdate || s.kind == Kind::kTanh) {
      ++c.int8_state_updates;
    } else if (s.kind == Kind::kMaxPool || s.kind == Kind::kAvgPool) {
      ++c.int8_pools;
    } else if (!s.keeps_quantized && kind.rfind("aten::", 0) == 0) {
      ++c.float_ops;
    }
  }
  return c;
}

}  // namespace rla::inference
