// ONNX export: the traced inference graph (trace_inference_graph) translated node by node into
// ONNX operators of opset 13. Weights are the graph's constants and become initializers; integer
// arguments (strides, dims, …) are constants of a C++ trace, so every shape is static except the
// batch dimension, which stays free because the network never reads the batch size.
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "onnx_proto.h"
#include "rla/deploy/export.h"
#include "rla/util/file.h"

namespace rla::deploy {
namespace {

using torch::jit::Node;
using torch::jit::Value;
namespace ox = onnx;

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;  // the IR version that introduced opset 13 (ONNX 1.8)

/// An argument the translation cannot express; the node's kind is reported with the reason.
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class OnnxWriter {
 public:
  OnnxWriter(const torch::jit::Graph& graph, int64_t batch, std::vector<std::string> output_names)
      : graph_(graph), batch_(batch), output_names_(std::move(output_names)) {}

  /// The serialized ModelProto. Throws std::invalid_argument listing the unsupported operations.
  std::string translate();

 private:
  static const std::map<std::string, void (OnnxWriter::*)(const Node*)>& handlers();

  // Arguments known at export time (ints, floats, bools, None and lists of them).
  const c10::IValue& fixed(const Value* v) const;
  int64_t as_int(const Value* v) const { return fixed(v).toInt(); }
  double as_double(const Value* v) const;
  bool as_bool(const Value* v) const { return fixed(v).toBool(); }
  bool is_none(const Value* v) const;
  std::vector<int64_t> as_ints(const Value* v) const { return fixed(v).toIntVector(); }
  int64_t rank(const Value* v) const;
  int64_t axis(const Value* tensor, int64_t dim) const { return dim < 0 ? dim + rank(tensor) : dim; }
  std::vector<int64_t> traced_sizes(const Value* v) const;

  // ONNX tensors: the name of a jit value (constants become initializers on first use).
  std::string tensor(const Value* v);
  std::string initializer(const at::Tensor& t);
  std::string int64s(const std::vector<int64_t>& v) { return initializer(torch::tensor(v, torch::kLong)); }
  std::string scalar(double v) { return initializer(torch::tensor({static_cast<float>(v)}).reshape({})); }
  std::string emit(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<ox::Message>& attributes = {});
  void set(const Value* v, std::string name) { names_[v] = std::move(name); }
  void alias(const Node* n) { set(n->output(), tensor(n->input(0))); }
  void unary(const Node* n, const std::string& op) { set(n->output(), emit(op, {tensor(n->input(0))})); }

  void constant(const Node* n);
  void list(const Node* n);
  void convolution(const Node* n);
  void with_alpha(const Node* n, const std::string& op);
  void add(const Node* n) { with_alpha(n, "Add"); }
  void sub(const Node* n) { with_alpha(n, "Sub"); }
  void mul(const Node* n) { set(n->output(), emit("Mul", {tensor(n->input(0)), tensor(n->input(1))})); }
  void matmul(const Node* n);
  void div(const Node* n) { set(n->output(), emit("Div", {tensor(n->input(0)), tensor(n->input(1))})); }
  void addcmul(const Node* n);
  void relu(const Node* n) { unary(n, "Relu"); }
  void tanh(const Node* n) { unary(n, "Tanh"); }
  void sigmoid(const Node* n) { unary(n, "Sigmoid"); }
  void silu(const Node* n);
  void hardtanh(const Node* n);
  void cat(const Node* n);
  /// kernel_shape, strides and pads of avg_pool2d / max_pool2d.
  std::vector<ox::Message> pool_window(const Node* n) const;
  void avg_pool(const Node* n);
  void max_pool(const Node* n);
  void adaptive_avg_pool(const Node* n);
  void mean(const Node* n);
  void flatten(const Node* n);
  void reshape(const Node* n);
  void unsqueeze(const Node* n);
  void squeeze(const Node* n);
  void transpose(const Node* n);
  void permute(const Node* n);
  void matrix_transpose(const Node* n);
  void addmm(const Node* n);
  void linear(const Node* n);
  void batch_norm(const Node* n);
  void dropout(const Node* n);
  void identity(const Node* n) { alias(n); }
  void narrow(const Node* n);
  void slice(const Node* n);
  void zeros_like(const Node* n);
  void expand(const Node* n);
  std::string gemm(const std::string& a, const Value* b, bool transpose_b, const Value* bias, double alpha,
                   double beta);

  const torch::jit::Graph& graph_;
  int64_t batch_;  ///< 0: free
  std::vector<std::string> output_names_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, c10::IValue> fixed_;
  std::unordered_map<const Value*, at::Tensor> constants_;
  std::unordered_map<const Value*, std::vector<const Value*>> tensor_lists_;
  std::unordered_map<const Value*, const Value*> transposed_of_;  // folded aten::t of a weight
  std::set<std::string> unsupported_;
  std::vector<ox::Message> nodes_;
  struct Initializer {
    ox::Message head;   ///< dims, type and name (ox::tensor_head)
    at::Tensor values;  ///< contiguous: its bytes are the raw data, copied once into the model
    std::string_view raw() const {
      return {static_cast<const char*>(values.data_ptr()), static_cast<size_t>(values.nbytes())};
    }
  };
  std::vector<Initializer> initializers_;
  int next_name_ = 0;
};

const std::map<std::string, void (OnnxWriter::*)(const Node*)>& OnnxWriter::handlers() {
  static const std::map<std::string, void (OnnxWriter::*)(const Node*)> table = {
      {"prim::Constant", &OnnxWriter::constant},
      {"prim::ListConstruct", &OnnxWriter::list},
      {"aten::_convolution", &OnnxWriter::convolution},
      {"aten::conv1d", &OnnxWriter::convolution},
      {"aten::conv2d", &OnnxWriter::convolution},
      {"aten::add", &OnnxWriter::add},
      {"aten::add_", &OnnxWriter::add},
      {"aten::sub", &OnnxWriter::sub},
      {"aten::sub_", &OnnxWriter::sub},
      {"aten::mul", &OnnxWriter::mul},
      {"aten::mul_", &OnnxWriter::mul},
      {"aten::div", &OnnxWriter::div},
      {"aten::div_", &OnnxWriter::div},
      {"aten::addcmul", &OnnxWriter::addcmul},
      {"aten::addcmul_", &OnnxWriter::addcmul},
      {"aten::relu", &OnnxWriter::relu},
      {"aten::relu_", &OnnxWriter::relu},
      {"aten::tanh", &OnnxWriter::tanh},
      {"aten::tanh_", &OnnxWriter::tanh},
      {"aten::sigmoid", &OnnxWriter::sigmoid},
      {"aten::sigmoid_", &OnnxWriter::sigmoid},
      {"aten::silu", &OnnxWriter::silu},
      {"aten::silu_", &OnnxWriter::silu},
      {"aten::hardtanh", &OnnxWriter::hardtanh},
      {"aten::hardtanh_", &OnnxWriter::hardtanh},
      {"aten::cat", &OnnxWriter::cat},
      {"aten::avg_pool2d", &OnnxWriter::avg_pool},
      {"aten::max_pool2d", &OnnxWriter::max_pool},
      {"aten::adaptive_avg_pool2d", &OnnxWriter::adaptive_avg_pool},
      {"aten::mean", &OnnxWriter::mean},
      {"aten::flatten", &OnnxWriter::flatten},
      {"aten::view", &OnnxWriter::reshape},
      {"aten::reshape", &OnnxWriter::reshape},
      {"aten::unsqueeze", &OnnxWriter::unsqueeze},
      {"aten::squeeze", &OnnxWriter::squeeze},
      {"aten::transpose", &OnnxWriter::transpose},
      {"aten::permute", &OnnxWriter::permute},
      {"aten::t", &OnnxWriter::matrix_transpose},
      {"aten::addmm", &OnnxWriter::addmm},
      {"aten::matmul", &OnnxWriter::matmul},
      {"aten::linear", &OnnxWriter::linear},
      {"aten::batch_norm", &OnnxWriter::batch_norm},
      {"aten::dropout", &OnnxWriter::dropout},
      {"aten::contiguous", &OnnxWriter::identity},
      {"aten::clone", &OnnxWriter::identity},
      {"aten::detach", &OnnxWriter::identity},
      {"aten::to_dense", &OnnxWriter::identity},
      {"aten::narrow", &OnnxWriter::narrow},
      {"aten::slice", &OnnxWriter::slice},
      {"aten::zeros_like", &OnnxWriter::zeros_like},
      {"aten::expand", &OnnxWriter::expand},
  };
  return table;
}

const c10::IValue& OnnxWriter::fixed(const Value* v) const {
  auto it = fixed_.find(v);
  if (it == fixed_.end()) throw Unsupported("an argument computed at run time");
  return it->second;
}

double OnnxWriter::as_double(const Value* v) const {
  const auto& i = fixed(v);
  return i.isDouble() ? i.toDouble() : static_cast<double>(i.toInt());
}

bool OnnxWriter::is_none(const Value* v) const {
  auto it = fixed_.find(v);
  return it != fixed_.end() && it->second.isNone();
}

int64_t OnnxWriter::rank(const Value* v) const {
  if (auto it = constants_.find(v); it != constants_.end()) return it->second.dim();
  const auto type = v->type()->cast<c10::TensorType>();
  if (!type || !type->dim()) throw Unsupported("a tensor of unknown rank");
  return static_cast<int64_t>(*type->dim());
}

std::vector<int64_t> OnnxWriter::traced_sizes(const Value* v) const {
  if (auto it = constants_.find(v); it != constants_.end()) return it->second.sizes().vec();
  const auto type = v->type()->cast<c10::TensorType>();
  const auto sizes = type ? type->sizes().concrete_sizes() : c10::nullopt;
  if (!sizes) throw Unsupported("a tensor of unknown shape");
  return *sizes;
}

std::string OnnxWriter::tensor(const Value* v) {
  if (auto it = names_.find(v); it != names_.end()) return it->second;
  if (auto it = constants_.find(v); it != constants_.end()) return names_[v] = initializer(it->second);
  if (auto it = fixed_.find(v); it != fixed_.end() && (it->second.isDouble() || it->second.isInt()))
    return names_[v] = scalar(as_double(v));
  throw Unsupported("an input that is not a tensor");
}

std::string OnnxWriter::initializer(const at::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  ox::DataType type;
  if (c.scalar_type() == torch::kLong) {
    type = ox::kInt64;
  } else {
    c = c.to(torch::kFloat);
    type = ox::kFloat;
  }
  auto name = fmt::format("w{}", next_name_++);
  initializers_.push_back({ox::tensor_head(name, type, c.sizes().vec()), c});
  return name;
}

std::string OnnxWriter::emit(const std::string& op, const std::vector<std::string>& inputs,
                             const std::vector<ox::Message>& attributes) {
  const auto id = next_name_++;
  auto out = fmt::format("t{}", id);
  nodes_.push_back(ox::node(op, inputs, {out}, fmt::format("{}_{}", op, id), attributes));
  return out;
}

void OnnxWriter::constant(const Node* n) {
  auto value = torch::jit::toIValue(n->output());
  if (!value) throw Unsupported("a constant of an unknown kind");
  if (value->isTensor())
    constants_[n->output()] = value->toTensor();
  else
    fixed_[n->output()] = *value;
}

void OnnxWriter::list(const Node* n) {
  const auto in = n->inputs();
  const bool all_fixed =
      std::all_of(in.begin(), in.end(), [this](const Value* v) { return fixed_.count(v) > 0; });
  if (!all_fixed) {
    tensor_lists_[n->output()] = std::vector<const Value*>(in.begin(), in.end());
    return;
  }
  const bool all_int =
      std::all_of(in.begin(), in.end(), [this](const Value* v) { return fixed_.at(v).isInt(); });
  if (all_int) {
    std::vector<int64_t> ints;
    for (const auto* v : in) ints.push_back(as_int(v));
    fixed_[n->output()] = c10::IValue(ints);
  } else {
    std::vector<double> doubles;
    for (const auto* v : in) doubles.push_back(as_double(v));
    fixed_[n->output()] = c10::IValue(doubles);
  }
}

/// A list argument of a pooling or convolution, repeated to `spatial` entries when given once.
std::vector<int64_t> per_axis(std::vector<int64_t> v, size_t spatial) {
  if (v.size() == 1 && spatial > 1) v.assign(spatial, v[0]);
  if (v.size() != spatial)
    throw Unsupported(fmt::format("a list of {} values for {} axes", v.size(), spatial));
  return v;
}

/// ONNX pads: the begin values of every axis, then the end values.
std::vector<int64_t> symmetric_pads(const std::vector<int64_t>& p) {
  auto pads = p;
  pads.insert(pads.end(), p.begin(), p.end());
  return pads;
}

void OnnxWriter::convolution(const Node* n) {
  // _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups, …) or
  // convNd(x, w, b, stride, padding, dilation, groups).
  const bool full = n->kind().toQualString() == std::string("aten::_convolution");
  if (full && as_bool(n->input(6))) throw Unsupported("a transposed convolution");
  const auto kernel = traced_sizes(n->input(1));
  const auto spatial = kernel.size() - 2;
  std::vector<std::string> inputs = {tensor(n->input(0)), tensor(n->input(1))};
  if (!is_none(n->input(2))) inputs.push_back(tensor(n->input(2)));
  const auto groups = as_int(n->input(full ? 8 : 6));
  set(n->output(),
      emit("Conv", inputs,
           {ox::attribute_ints("kernel_shape", std::vector<int64_t>(kernel.begin() + 2, kernel.end())),
            ox::attribute_ints("strides", per_axis(as_ints(n->input(3)), spatial)),
            ox::attribute_ints("pads", symmetric_pads(per_axis(as_ints(n->input(4)), spatial))),
            ox::attribute_ints("dilations", per_axis(as_ints(n->input(5)), spatial)),
            ox::attribute_int("group", groups)}));
}

void OnnxWriter::with_alpha(const Node* n, const std::string& op) {  // a op alpha * b
  auto b = tensor(n->input(1));
  if (n->inputs().size() > 2 && as_double(n->input(2)) != 1.0)
    b = emit("Mul", {b, scalar(as_double(n->input(2)))});
  set(n->output(), emit(op, {tensor(n->input(0)), b}));
}

void OnnxWriter::addcmul(const Node* n) {  // self + value * t1 * t2
  auto product = emit("Mul", {tensor(n->input(1)), tensor(n->input(2))});
  if (as_double(n->input(3)) != 1.0) product = emit("Mul", {product, scalar(as_double(n->input(3)))});
  set(n->output(), emit("Add", {tensor(n->input(0)), product}));
}

void OnnxWriter::silu(const Node* n) {
  const auto x = tensor(n->input(0));
  set(n->output(), emit("Mul", {x, emit("Sigmoid", {x})}));
}

void OnnxWriter::hardtanh(const Node* n) {
  set(n->output(),
      emit("Clip", {tensor(n->input(0)), scalar(as_double(n->input(1))), scalar(as_double(n->input(2)))}));
}

void OnnxWriter::cat(const Node* n) {
  auto it = tensor_lists_.find(n->input(0));
  if (it == tensor_lists_.end()) throw Unsupported("a list of tensors built at run time");
  std::vector<std::string> inputs;
  for (const auto* v : it->second) inputs.push_back(tensor(v));
  set(n->output(),
      emit("Concat", inputs, {ox::attribute_int("axis", axis(n->output(), as_int(n->input(1))))}));
}

std::vector<ox::Message> OnnxWriter::pool_window(const Node* n) const {
  // Both 2-D poolings start (x, kernel, stride, padding, …); an empty stride means the kernel.
  const auto kernel = per_axis(as_ints(n->input(1)), 2);
  auto stride = as_ints(n->input(2));
  stride = stride.empty() ? kernel : per_axis(stride, 2);
  return {ox::attribute_ints("kernel_shape", kernel), ox::attribute_ints("strides", stride),
          ox::attribute_ints("pads", symmetric_pads(per_axis(as_ints(n->input(3)), 2)))};
}

void OnnxWriter::avg_pool(const Node* n) {
  // avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
  if (n->inputs().size() > 6 && !is_none(n->input(6))) throw Unsupported("a divisor_override");
  auto attributes = pool_window(n);
  attributes.push_back(ox::attribute_int("ceil_mode", as_bool(n->input(4))));
  attributes.push_back(ox::attribute_int("count_include_pad", as_bool(n->input(5))));
  set(n->output(), emit("AveragePool", {tensor(n->input(0))}, attributes));
}

void OnnxWriter::max_pool(const Node* n) {
  // max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
  auto attributes = pool_window(n);
  attributes.push_back(ox::attribute_ints("dilations", per_axis(as_ints(n->input(4)), 2)));
  attributes.push_back(ox::attribute_int("ceil_mode", as_bool(n->input(5))));
  set(n->output(), emit("MaxPool", {tensor(n->input(0))}, attributes));
}

void OnnxWriter::adaptive_avg_pool(const Node* n) {
  if (as_ints(n->input(1)) != std::vector<int64_t>{1, 1}) throw Unsupported("an output size other than 1x1");
  unary(n, "GlobalAveragePool");
}

void OnnxWriter::mean(const Node* n) {
  // mean(x, dims, keepdim, dtype)
  if (n->inputs().size() > 3 && !is_none(n->input(3))) throw Unsupported("a dtype");
  const auto* x = n->input(0);
  std::vector<int64_t> axes;
  for (auto d : as_ints(n->input(1))) axes.push_back(axis(x, d));
  std::sort(axes.begin(), axes.end());
  const bool keep = as_bool(n->input(2));
  if (rank(x) == 4 && axes == std::vector<int64_t>{2, 3}) {  // global pooling, as runtimes optimise it
    const auto pooled = emit("GlobalAveragePool", {tensor(x)});
    set(n->output(), keep ? pooled : emit("Flatten", {pooled}, {ox::attribute_int("axis", 1)}));
    return;
  }
  set(n->output(), emit("ReduceMean", {tensor(x)},
                        {ox::attribute_ints("axes", axes), ox::attribute_int("keepdims", keep)}));
}

void OnnxWriter::flatten(const Node* n) {
  const auto* x = n->input(0);
  const auto start = axis(x, as_int(n->input(1))), end = axis(x, as_int(n->input(2)));
  if (start == end) return alias(n);
  if (start != 1 || end != rank(x) - 1) throw Unsupported("flattening other than from dim 1 to the end");
  set(n->output(), emit("Flatten", {tensor(x)}, {ox::attribute_int("axis", 1)}));
}

void OnnxWriter::reshape(const Node* n) {
  // A fixed shape: a C++ trace records sizes as numbers; -1 (the batch) is resolved at run time.
  set(n->output(), emit("Reshape", {tensor(n->input(0)), int64s(as_ints(n->input(1)))}));
}

void OnnxWriter::unsqueeze(const Node* n) {
  set(n->output(),
      emit("Unsqueeze", {tensor(n->input(0)), int64s({axis(n->output(), as_int(n->input(1)))})}));
}

void OnnxWriter::squeeze(const Node* n) {
  const auto* x = n->input(0);
  std::vector<int64_t> axes;
  if (n->inputs().size() > 1) {
    const auto d = axis(x, as_int(n->input(1)));
    if (traced_sizes(x).at(d) != 1) return alias(n);  // squeezing a dim that is not 1 does nothing
    axes = {d};
  } else {  // the dims that were 1 in the trace, never the batch: a batch of one must stay
    const auto sizes = traced_sizes(x);
    for (int64_t d = 1; d < static_cast<int64_t>(sizes.size()); ++d)
      if (sizes[d] == 1) axes.push_back(d);
  }
  set(n->output(), emit("Squeeze", {tensor(x), int64s(axes)}));
}

void OnnxWriter::transpose(const Node* n) {
  const auto* x = n->input(0);
  std::vector<int64_t> perm(rank(x));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm.at(axis(x, as_int(n->input(1)))), perm.at(axis(x, as_int(n->input(2)))));
  set(n->output(), emit("Transpose", {tensor(x)}, {ox::attribute_ints("perm", perm)}));
}

void OnnxWriter::permute(const Node* n) {
  const auto* x = n->input(0);
  std::vector<int64_t> perm;
  for (auto d : as_ints(n->input(1))) perm.push_back(axis(x, d));
  set(n->output(), emit("Transpose", {tensor(x)}, {ox::attribute_ints("perm", perm)}));
}

void OnnxWriter::matrix_transpose(const Node* n) {
  if (auto it = constants_.find(n->input(0)); it != constants_.end()) {  // a weight: fold
    constants_[n->output()] = it->second.t().contiguous();
    transposed_of_[n->output()] = n->input(0);
    return;
  }
  set(n->output(), emit("Transpose", {tensor(n->input(0))}, {ox::attribute_ints("perm", {1, 0})}));
}

std::string OnnxWriter::gemm(const std::string& a, const Value* b, bool transpose_b, const Value* bias,
                             double alpha, double beta) {
  std::vector<std::string> inputs = {a, tensor(b)};
  if (bias && !is_none(bias)) inputs.push_back(tensor(bias));
  return emit(
      "Gemm", inputs,
      {ox::attribute_float("alpha", static_cast<float>(alpha)),
       ox::attribute_float("beta", static_cast<float>(beta)), ox::attribute_int("transB", transpose_b)});
}

void OnnxWriter::addmm(const Node* n) {  // beta * bias + alpha * (x @ m)
  if (rank(n->input(1)) != 2) throw Unsupported("a matrix product of rank other than 2");
  // Linear layers trace as addmm(b, x, t(w)): Gemm takes w itself with transB, the form every
  // runtime recognises as a fully connected layer (OpenCV 4.6 accepts no other).
  const auto folded = transposed_of_.find(n->input(2));
  const bool transposed = folded != transposed_of_.end();
  set(n->output(), gemm(tensor(n->input(1)), transposed ? folded->second : n->input(2), transposed,
                        n->input(0), as_double(n->input(4)), as_double(n->input(3))));
}

void OnnxWriter::matmul(const Node* n) {
  // A linear layer without bias traces as matmul(x, t(w)): written as Gemm like the others.
  const auto folded = transposed_of_.find(n->input(1));
  if (rank(n->input(0)) == 2 && folded != transposed_of_.end())
    return set(n->output(), gemm(tensor(n->input(0)), folded->second, true, nullptr, 1.0, 1.0));
  set(n->output(), emit("MatMul", {tensor(n->input(0)), tensor(n->input(1))}));
}

void OnnxWriter::linear(const Node* n) {  // x @ w^T + b
  if (rank(n->input(0)) != 2) throw Unsupported("a linear layer on an input of rank other than 2");
  set(n->output(), gemm(tensor(n->input(0)), n->input(1), true, n->input(2), 1.0, 1.0));
}

void OnnxWriter::batch_norm(const Node* n) {
  // batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled)
  if (as_bool(n->input(5))) throw Unsupported("batch statistics (training mode)");
  const auto channels = traced_sizes(n->input(0)).at(1);
  const auto scale = is_none(n->input(1)) ? initializer(torch::ones({channels})) : tensor(n->input(1));
  const auto shift = is_none(n->input(2)) ? initializer(torch::zeros({channels})) : tensor(n->input(2));
  set(n->output(), emit("BatchNormalization",
                        {tensor(n->input(0)), scale, shift, tensor(n->input(3)), tensor(n->input(4))},
                        {ox::attribute_float("epsilon", static_cast<float>(as_double(n->input(7))))}));
}

void OnnxWriter::dropout(const Node* n) {
  if (as_bool(n->input(2))) throw Unsupported("dropout in training mode");
  alias(n);
}

void OnnxWriter::narrow(const Node* n) {  // narrow(x, dim, start, length)
  const auto* x = n->input(0);
  const auto start = as_int(n->input(2));
  set(n->output(), emit("Slice", {tensor(x), int64s({start}), int64s({start + as_int(n->input(3))}),
                                  int64s({axis(x, as_int(n->input(1)))})}));
}

void OnnxWriter::slice(const Node* n) {  // slice(x, dim, start, end, step)
  const auto* x = n->input(0);
  const auto start = is_none(n->input(2)) ? 0 : as_int(n->input(2));
  const auto end = is_none(n->input(3)) ? std::numeric_limits<int64_t>::max() : as_int(n->input(3));
  set(n->output(), emit("Slice", {tensor(x), int64s({start}), int64s({end}),
                                  int64s({axis(x, as_int(n->input(1)))}), int64s({as_int(n->input(4))})}));
}

void OnnxWriter::zeros_like(const Node* n) {
  // Zeros of x's run-time shape as x * 0: OpenCV 4.6 cannot run ConstantOfShape(Shape(x)) with a
  // free batch. (Only a NaN or inf in x would differ, and those reach the logits anyway.)
  set(n->output(), emit("Mul", {tensor(n->input(0)), scalar(0.0)}));
}

void OnnxWriter::expand(const Node* n) {
  // torch's -1 keeps a dim; ONNX Expand broadcasts both ways, so 1 there keeps it too.
  auto sizes = as_ints(n->input(1));
  for (auto& s : sizes) s = s == -1 ? 1 : s;
  set(n->output(), emit("Expand", {tensor(n->input(0)), int64s(sizes)}));
}

std::string OnnxWriter::translate() {
  const auto inputs = graph_.inputs();
  const auto outputs = graph_.outputs();
  if (inputs.size() != 1 || outputs.size() != output_names_.size())
    throw std::invalid_argument(fmt::format(
        "ONNX export: the traced graph must have one input and {} outputs", output_names_.size()));
  set(inputs[0], kOnnxInputName);
  for (const auto* n : graph_.nodes()) {
    const std::string kind = n->kind().toQualString();
    const auto it = handlers().find(kind);
    try {
      if (it == handlers().end()) throw Unsupported("no ONNX equivalent");
      (this->*it->second)(n);
    } catch (const Unsupported& e) {
      unsupported_.insert(fmt::format("{} ({})", kind, e.what()));
    } catch (const c10::Error& e) {  // an argument of an unexpected type
      unsupported_.insert(fmt::format("{} (unexpected arguments)", kind));
    }
    for (const auto* out : n->outputs())  // keep translating to report every problem at once
      if (!names_.count(out) && !fixed_.count(out) && !constants_.count(out) && !tensor_lists_.count(out))
        names_[out] = "unsupported";
  }
  if (!unsupported_.empty())
    throw std::invalid_argument(
        fmt::format("ONNX export: cannot translate {}", fmt::join(unsupported_, "; ")));
  for (size_t i = 0; i < outputs.size(); ++i)
    nodes_.push_back(
        ox::node("Identity", {tensor(outputs[i])}, {output_names_[i]}, "output_" + output_names_[i], {}));

  const ox::Dim batch = batch_ > 0 ? ox::Dim{batch_, ""} : ox::Dim{-1, "batch"};
  std::vector<ox::Dim> input_dims = {batch};
  const auto in_sizes = traced_sizes(inputs[0]);
  for (size_t d = 1; d < in_sizes.size(); ++d) input_dims.push_back({in_sizes[d], ""});
  std::vector<ox::Message> values;  // GraphProto input = 11, output = 12
  values.push_back(ox::float_value_info(kOnnxInputName, input_dims));
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::vector<ox::Dim> output_dims = {batch};
    const auto out_sizes = traced_sizes(outputs[i]);
    for (size_t d = 1; d < out_sizes.size(); ++d) output_dims.push_back({out_sizes[d], ""});
    values.push_back(ox::float_value_info(output_names_[i], output_dims));
  }
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12; written in place
  // inside the model, so that the weights are copied once (from each tensor into the model).
  const std::string graph_name = "rla";
  size_t graph_size = ox::field_size(2, graph_name.size());
  for (const auto& n : nodes_) graph_size += ox::field_size(1, n.size());
  for (const auto& w : initializers_) graph_size += ox::field_size(5, ox::tensor_size(w.head, w.raw()));
  for (size_t i = 0; i < values.size(); ++i) graph_size += ox::field_size(i == 0 ? 11 : 12, values[i].size());
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 (version = 2).
  ox::Message model;
  model.int64(1, kIrVersion).bytes(2, "rla");
  model.reserve_more(ox::field_size(7, graph_size) + 32);
  model.begin(7, graph_size);
  const size_t graph_start = model.size();
  for (const auto& n : nodes_) model.message(1, n);
  model.bytes(2, graph_name);
  for (const auto& w : initializers_) ox::append_tensor(model, 5, w.head, w.raw());
  for (size_t i = 0; i < values.size(); ++i) model.message(i == 0 ? 11 : 12, values[i]);
  TORCH_CHECK(model.size() - graph_start == graph_size, "ONNX export: the graph took ",
              model.size() - graph_start, " bytes, not the ", graph_size, " computed");
  model.message(8, ox::Message().int64(2, kOpset));
  return std::move(model).release();
}

}  // namespace

std::string onnx_from_graph(const torch::jit::Graph& graph, int64_t batch,
                            const std::vector<std::string>& outputs) {
  if (batch < 0) throw std::invalid_argument(fmt::format("ONNX export: batch {} (0 keeps it free)", batch));
  return OnnxWriter(graph, batch, outputs).translate();
}

void export_onnx(const models::NetworkImpl& net, const std::string& path, const ExportOptions& options) {
  const auto graph = trace_inference_graph(net, options);
  util::write_file_atomic(path,
                          onnx_from_graph(*graph, options.onnx_batch, export_output_names(*graph, options)));
}

}  // namespace rla::deploy
