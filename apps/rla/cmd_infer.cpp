// `rla infer`: logits of a model for a tensor file, written as a tensor file.
#include <fmt/format.h>
#include <torch/torch.h>

#include <iostream>

#include "commands.h"
#include "options.h"
#include "rla/inference/load.h"
#include "rla/inference/quantized.h"

namespace rla::app {
namespace {
struct InferConfig {
  std::string model, weights, input, output;
  std::string input_key = "input";
  int64_t classes = 0;
  ModelFlags flags;
  bool train_mode = false;
  bool non_strict = false;
  bool eager = false;
  Int8Flags int8;
};
}  // namespace

Command add_infer_command(CLI::App& root) {
  auto cfg = std::make_shared<InferConfig>();
  auto* cmd =
      root.add_subcommand("infer", "Run a model with checkpoint weights on a tensor file, write the logits");
  cmd->add_option("--weights,-w", cfg->weights,
                  "A run folder or rla checkpoint (model and options from it), or a torch.save state dict")
      ->required();
  cmd->add_option("--model,-m", cfg->model, "Model name (see `rla list`); needed for a plain state dict");
  cmd->add_option("--input,-i", cfg->input, "Tensor file: one tensor [N, C, H, W] or a dict with it")
      ->required();
  cmd->add_option("--output,-o", cfg->output, "Where to write the logits [N, classes]")->required();
  cmd->add_option("--input-key", cfg->input_key, "Dict key of the input tensor")->capture_default_str();
  cmd->add_option("--classes", cfg->classes, "Number of classes (default: the model's)")->check(kPositive);
  add_model_options(cmd, cfg->flags);
  cmd->add_flag("--train-mode", cfg->train_mode, "BatchNorm uses batch statistics (model.train())");
  cmd->add_flag("--non-strict", cfg->non_strict, "Load what matches, skip the rest");
  cmd->add_flag("--eager", cfg->eager,
                "Run the eager model instead of the prepared fast path (BatchNorm folded, oneDNN; logits "
                "within 1e-4); --train-mode and --int8 imply it");
  add_int8_options(cmd, cfg->int8);
  return {cmd, [cfg]() {
            cfg->int8.check();
            if (cfg->int8.enabled && cfg->train_mode)
              throw std::invalid_argument("--int8 runs in eval mode (drop --train-mode)");
            auto mc = cfg->flags.to_config();
            if (cfg->classes > 0) mc.num_classes = cfg->classes;
            inference::LoadOptions lo;
            lo.model = cfg->model;
            lo.config = mc;
            lo.strict = !cfg->non_strict;
            const bool eager = cfg->eager || cfg->train_mode || cfg->int8.enabled;
            lo.execution = eager ? inference::Execution::kEager : inference::Execution::kFast;
            auto m = inference::load_model(cfg->weights, lo);
            if (!m.load_report.empty()) std::cerr << "rla infer: " << m.load_report << "\n";
            const auto x = io::read_tensor_file(cfg->input, cfg->input_key).to(torch::kFloat);
            TORCH_CHECK(x.dim() == 4, cfg->input, ": expected an input [N, C, H, W], got ", x.sizes());
            m.net->train(cfg->train_mode);
            torch::Tensor logits;
            if (cfg->int8.enabled) {
              torch::NoGradGuard no_grad;
              logits =
                  inference::QuantizedNetwork::load(cfg->int8.path(cfg->weights), *m.net, m.model).forward(x);
            } else {
              logits = m.forward(x);
            }
            io::write_tensor_file(cfg->output, logits);
            std::cout << fmt::format("wrote {}: logits [{}] ({})\n", cfg->output,
                                     fmt::join(logits.sizes(), ", "),
                                     cfg->int8.enabled ? "int8"
                                     : cfg->train_mode ? "train mode"
                                     : m.is_fast()     ? "eval mode, fast path"
                                                       : "eval mode, eager");
            return 0;
          }};
}

}  // namespace rla::app
