// `rla infer`: logits of a model for a tensor file, written as a tensor file.
#include <fmt/format.h>
#include <torch/torch.h>

#include <iostream>

#include "commands.h"
#include "rla/io/model_io.h"

namespace rla::app {

namespace {
struct InferConfig {
  std::string model, weights, input, output;
  std::string input_key = "input";
  int64_t classes = 0;
  int64_t rla_channels = 0;
  bool train_mode = false;
  bool non_strict = false;
};
}  // namespace

Runner add_infer_command(CLI::App& root) {
  auto cfg = std::make_shared<InferConfig>();
  auto* cmd =
      root.add_subcommand("infer", "Run a model with checkpoint weights on a tensor file, write the logits");
  cmd->add_option("--model,-m", cfg->model, "Model name (see `rla list`)")->required();
  cmd->add_option("--weights,-w", cfg->weights, "Checkpoint (torch.save format)")->required();
  cmd->add_option("--input,-i", cfg->input, "Tensor file: one tensor [N, C, H, W] or a dict with it")
      ->required();
  cmd->add_option("--output,-o", cfg->output, "Where to write the logits [N, classes]")->required();
  cmd->add_option("--input-key", cfg->input_key, "Dict key of the input tensor")->capture_default_str();
  cmd->add_option("--classes", cfg->classes, "Number of classes (default: the model's)");
  cmd->add_option("--rla-channels", cfg->rla_channels, "k, the RLA state channels (RLA models)");
  cmd->add_flag("--train-mode", cfg->train_mode, "BatchNorm uses batch statistics (model.train())");
  cmd->add_flag("--non-strict", cfg->non_strict, "Load what matches, skip the rest");
  return [cfg]() {
    models::ModelConfig mc;
    if (cfg->classes > 0) mc.num_classes = cfg->classes;
    if (cfg->rla_channels > 0) mc.rla_channels = cfg->rla_channels;
    io::LoadReport report;
    auto net = io::load_model(cfg->model, cfg->weights, mc, {}, io::LoadOptions{!cfg->non_strict}, &report);
    if (!report.ok()) std::cerr << "rla infer: " << report.summary() << "\n";
    const auto x = io::read_tensor_file(cfg->input, cfg->input_key).to(torch::kFloat);
    TORCH_CHECK(x.dim() == 4, cfg->input, ": expected an input [N, C, H, W], got ", x.sizes());
    net->train(cfg->train_mode);
    torch::NoGradGuard no_grad;
    const auto logits = net->forward(x);
    io::write_tensor_file(cfg->output, logits);
    std::cout << fmt::format("wrote {}: logits [{}] ({} mode)\n", cfg->output,
                             fmt::join(logits.sizes(), ", "), cfg->train_mode ? "train" : "eval");
    return 0;
  };
}

}  // namespace rla::app
