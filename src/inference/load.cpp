#include "rla/inference/load.h"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>

#include "rla/engine/checkpoint.h"
#include "rla/io/state_dict.h"
#include "rla/util/memory.h"

namespace rla::inference {
namespace {

namespace fs = std::filesystem;

// The stored configuration must agree with what the caller asked for, field by field.
void check_agrees(const std::string& source, const engine::TrainConfig& stored, const std::string& model,
                  const models::ModelConfig& asked) {
  if (!model.empty() && model != stored.model)
    throw std::invalid_argument(
        fmt::format("{} holds a trained {}, not {} (leave the model name empty to use the stored one)",
                    source, stored.model, model));
  const auto a = engine::to_json(asked), s = engine::to_json(stored.model_config);
  for (const auto& [key, value] : a.items()) {
    if (s.contains(key) && s[key] != value)
      throw std::invalid_argument(
          fmt::format("{} was trained with {} = {}, not {}", source, key, s[key].dump(), value.dump()));
  }
}

// The run's data, as configured, with the caller's replacements; no training augmentation.
data::DataBundle open_run_data(const engine::TrainConfig& stored, const LoadOptions& o) {
  data::DataConfig d = stored.data;
  if (o.dataset) d.dataset = *o.dataset;
  if (o.data_root) d.root = *o.data_root;
  if (o.limit_test > 0) d.limit_test = o.limit_test;
  if (o.image_size > 0) d.image_size = o.image_size;
  d.augment = false;
  return data::open_data(d);
}

void load_from_run(ModelBundle& m, const LoadOptions& o) {
  m.checkpoint = engine::resolve_checkpoint(m.source);
  auto stored = engine::checkpoint_config(m.checkpoint);
  check_agrees(m.source, stored, o.model, o.config);
  auto& mc = stored.model_config;
  // Configurations written before the class and channel counts were stored need the data.
  if (o.with_data || !mc.num_classes || !mc.in_channels) {
    m.data = open_run_data(stored, o);
    if (!mc.num_classes) mc.num_classes = m.data->test->num_classes();
    if (!mc.in_channels) mc.in_channels = m.data->input_shape[0];
    if (stored.input_shape.empty()) stored.input_shape = m.data->input_shape;
    if (stored.class_names.empty()) stored.class_names = m.data->test->class_names();
    if (!o.with_data) m.data.reset();
  }
  const auto& entry = models::find_model(stored.model);
  m.config = models::resolve_config(entry, mc);
  m.net = entry.build(m.config);  // channels_last off: inputs come as the caller has them
  if (o.with_exits) {
    if (!stored.exits.enabled() || !engine::checkpoint_has_extra(m.checkpoint))
      throw std::runtime_error(m.checkpoint +
                               ": no exit heads in this checkpoint (train them jointly, or post hoc on the "
                               "frozen backbone)");
    m.heads = models::ExitHeads(*m.net, *mc.num_classes, *stored.exits.placement, stored.exits.input,
                                stored.exits.projection);
    engine::load_checkpoint(m.checkpoint, *m.net, nullptr, m.heads.get());
    m.heads->eval();
  } else {
    engine::load_checkpoint(m.checkpoint, *m.net, nullptr);
  }
  if (o.weights == Weights::kAverage) engine::load_checkpoint_average(m.checkpoint, *m.net);
  m.model = stored.model;
  m.input_shape = stored.input_shape;
  m.class_names = stored.class_names;
  m.dataset = stored.data.dataset;
  m.input = io::image_input_for(entry, m.config.in_channels.value_or(3));
  if (m.input_shape.size() == 3) {
    m.input.channels = m.input_shape[0];
    m.input.size = m.input_shape[1];
    m.input.center_crop = m.dataset == "folder";
  }
  if (!stored.input_mean.empty()) {
    m.input.mean = stored.input_mean;
    m.input.std = stored.input_std;
  } else if (m.data) {
    m.input.mean = m.data->normalization.mean;
    m.input.std = m.data->normalization.std;
  }
  m.run = std::move(stored);
}

void load_from_state_dict(ModelBundle& m, const LoadOptions& o) {
  if (o.model.empty())
    throw std::invalid_argument(
        m.source + " is not an rla run or checkpoint: a state dict needs the name of the model it holds");
  if (o.with_data || o.with_exits || o.weights == Weights::kAverage)
    throw std::invalid_argument(
        m.source + " is a state dict: it has no dataset, exit heads or weight average (only a run has)");
  m.checkpoint = m.source;
  const auto& entry = models::find_model(o.model);
  m.config = models::resolve_config(entry, o.config);
  m.net = entry.build(m.config);
  const auto sd = io::read_state_dict(m.source);
  try {
    const auto report = io::load_state_dict(*m.net, sd, io::LoadOptions{o.strict});
    if (!report.ok()) m.load_report = report.summary();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{} into {}: {}", m.source, o.model, e.what()));
  }
  m.model = o.model;
  m.input = io::image_input_for(entry, m.config.in_channels.value_or(3));
}

}  // namespace

torch::Tensor ModelBundle::forward(const torch::Tensor& input) const {
  if (fast) return fast->forward(input);
  torch::NoGradGuard no_grad;
  const auto params = net->parameters();
  const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  return net->forward(input.to(device));
}

ModelBundle load_model(const std::string& source, const LoadOptions& options) {
  if (options.execution == Execution::kFast && options.with_exits)
    throw std::invalid_argument("exit heads run on the eager model: load with eager execution");
  if (options.execution == Execution::kFast && !options.device.is_cpu())
    throw std::invalid_argument(fmt::format(
        "the fast path runs on the CPU: load with eager execution to run on {}", options.device.str()));
  ModelBundle m;
  m.source = source;
  if (!fs::exists(source)) throw std::runtime_error(source + ": no such run folder or checkpoint");
  if (fs::is_directory(source) || engine::is_training_checkpoint(source)) {
    load_from_run(m, options);
  } else {
    load_from_state_dict(m, options);
  }
  m.net->eval();
  m.net->to(options.device);
  if (options.execution == Execution::kFast) {
    if (options.keep_heap) util::keep_freed_memory();
    m.fast = std::make_shared<FastNetwork>(m.net);
  }
  return m;
}

}  // namespace rla::inference
