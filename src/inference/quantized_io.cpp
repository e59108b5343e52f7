// The int8 model file (torch.save-compatible): the graph's save / load and QuantizedNetwork's.
#include "quantized_graph.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

namespace rla::inference {

void QuantizedGraph::save(const std::string& path, const std::string& model) const {
  using io::PyValue;
  std::vector<PyValue> constants, weights, weight_scales, shape;
  // Conv weights are stored once, in int8: their float constants are written as empty tensors.
  std::set<int> conv_weights;
  for (const auto& s : steps_) {
    if (s.kind != Kind::kConv) continue;
    weights.push_back(PyValue::tensor(s.qweight.int_repr()));
    weight_scales.push_back(PyValue::tensor(s.qweight.q_per_channel_scales().to(torch::kFloat)));
    conv_weights.insert(s.weight);
  }
  for (auto d : input_shape_) shape.push_back(PyValue::integer(d));
  for (size_t v = 0; v < constants_.size(); ++v) {
    if (!is_constant_[v] || !constants_[v].isTensor()) continue;
    constants.push_back(PyValue::tensor(conv_weights.count(static_cast<int>(v)) ? torch::empty({0})
                                                                                : constants_[v].toTensor()));
  }
  auto dict = PyValue::dict();
  auto& d = dict.mutable_dict();
  d.set(PyValue::string("format"), PyValue::string(kInt8Format));
  d.set(PyValue::string("version"), PyValue::integer(kInt8FormatVersion));
  d.set(PyValue::string("model"), PyValue::string(model));
  d.set(PyValue::string("input_shape"), PyValue::list(shape));
  d.set(PyValue::string("calibration_images"), PyValue::integer(calibrated_));
  d.set(PyValue::string("constants"), PyValue::list(constants));
  d.set(PyValue::string("conv_weights"), PyValue::list(weights));
  d.set(PyValue::string("conv_weight_scales"), PyValue::list(weight_scales));
  d.set(PyValue::string("activation_scales"), PyValue::tensor(torch::tensor(scale_, torch::kDouble)));
  d.set(PyValue::string("activation_zero_points"), PyValue::tensor(torch::tensor(zero_point_, torch::kLong)));
  io::write_pytorch_file(path, dict);
}

void QuantizedGraph::load(const io::PyValue& file, const std::string& path) {
  const auto mismatch = [&path](const std::string& what) {
    return std::invalid_argument(fmt::format("{}: {}", path, what));
  };
  const auto& d = file.to_dict();
  const auto* constants = d.find("constants");
  const auto* weights = d.find("conv_weights");
  const auto* weight_scales = d.find("conv_weight_scales");
  const auto* scales = d.find("activation_scales");
  const auto* zero_points = d.find("activation_zero_points");
  if (!constants || !weights || !weight_scales || !scales || !zero_points)
    throw mismatch("an int8 model file without its weights");
  std::vector<int> tensor_constants;
  for (size_t v = 0; v < constants_.size(); ++v)
    if (is_constant_[v] && constants_[v].isTensor()) tensor_constants.push_back(static_cast<int>(v));
  const auto conv_count =
      std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return s.kind == Kind::kConv; });
  if (constants->items().size() != tensor_constants.size() ||
      weights->items().size() != static_cast<size_t>(conv_count) ||
      scales->to_tensor().numel() != static_cast<int64_t>(scale_.size()))
    throw mismatch("an int8 model of another network (its graph differs from this model's)");
  for (size_t i = 0; i < tensor_constants.size(); ++i) {
    const auto& t = constants->items()[i].to_tensor();
    auto& slot = constants_[tensor_constants[i]];
    if (t.numel() == 0) continue;  // a conv weight, stored in int8 below
    if (t.sizes() != slot.toTensor().sizes())
      throw mismatch("an int8 model of another network (a weight's shape differs)");
    slot = t;
  }
  size_t k = 0;
  for (auto& s : steps_) {
    if (s.kind != Kind::kConv) continue;
    const auto& w = weights->items()[k].to_tensor();
    const auto sc = weight_scales->items()[k++].to_tensor().to(torch::kDouble);
    if (w.sizes() != constants_[s.weight].toTensor().sizes() || w.scalar_type() != torch::kChar ||
        sc.numel() != w.size(0))
      throw mismatch("an int8 model of another network (a convolution's shape differs)");
    s.qweight = at::_make_per_channel_quantized_tensor(w, sc, torch::zeros({w.size(0)}, torch::kLong), 0);
    constants_[s.weight] = s.qweight.dequantize();  // the float path (recalibration) uses these
  }
  const auto sc = scales->to_tensor().to(torch::kDouble).contiguous();
  const auto zp = zero_points->to_tensor().to(torch::kLong).contiguous();
  scale_.assign(sc.data_ptr<double>(), sc.data_ptr<double>() + sc.numel());
  zero_point_.assign(zp.data_ptr<int64_t>(), zp.data_ptr<int64_t>() + zp.numel());
  if (const auto* n = d.find("calibration_images")) calibrated_ = n->to_int();
  pack_convolutions();
}

namespace {

/// The model name and input shape an int8 file records.
std::pair<std::string, std::vector<int64_t>> describe_file(const io::PyValue& file, const std::string& path) {
  const auto& d = file.to_dict();
  const auto* model = d.find("model");
  const auto* shape = d.find("input_shape");
  if (!model || !shape)
    throw std::invalid_argument(fmt::format("{}: an int8 model without its model name", path));
  std::vector<int64_t> dims;
  for (const auto& v : shape->items()) dims.push_back(v.to_int());
  return {model->to_string(), dims};
}

io::PyValue read_int8_file(const std::string& path) {
  auto file = io::read_pytorch_file(path);
  const auto* format = file.is_dict() ? file.to_dict().find("format") : nullptr;
  if (!format || !format->is_string() || format->to_string() != kInt8Format)
    throw std::invalid_argument(
        fmt::format("{}: not an int8 model (its \"format\" entry is not \"{}\")", path, kInt8Format));
  const auto* version = file.to_dict().find("version");
  if (!version || version->to_int() != kInt8FormatVersion)
    throw std::invalid_argument(fmt::format("{}: int8 model format version {} (this build reads {})", path,
                                            version ? version->to_int() : -1, kInt8FormatVersion));
  return file;
}
}  // namespace

void QuantizedNetwork::save(const std::string& path, const std::string& model) const {
  if (!graph_->finalized_) throw std::logic_error("int8 save before finalize()");
  graph_->save(path, model);
}

QuantizedNetwork QuantizedNetwork::load(const std::string& path, const models::NetworkImpl& net,
                                        const std::string& expected_model) {
  if (!std::filesystem::is_regular_file(path))
    throw std::invalid_argument(fmt::format("{}: no int8 model there (no such file)", path));
  const auto file = read_int8_file(path);
  const auto [model, shape] = describe_file(file, path);
  if (!expected_model.empty() && model != expected_model)
    throw std::invalid_argument(fmt::format("{}: an int8 model of {}, not {}", path, model, expected_model));
  QuantizedNetwork q(net, shape);
  q.graph_->load(file, path);
  return q;
}

std::pair<std::string, std::vector<int64_t>> QuantizedNetwork::describe(const std::string& path) {
  return describe_file(read_int8_file(path), path);
}

}  // namespace rla::inference
