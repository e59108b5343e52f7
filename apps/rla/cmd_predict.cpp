// `rla predict`: top-5 classes of a model for image files (JPEG/PNG).
#include <fmt/format.h>
#include <torch/torch.h>

#include <iostream>

#include "commands.h"
#include "options.h"
#include "rla/inference/load.h"

namespace rla::app {
namespace {
struct PredictConfig {
  std::string model, weights, labels;
  std::vector<std::string> images;
  int64_t classes = 0;
  int64_t top = 5;
  ModelFlags flags;
  bool eager = false;
};
}  // namespace

Command add_predict_command(CLI::App& root) {
  auto cfg = std::make_shared<PredictConfig>();
  auto* cmd = root.add_subcommand("predict", "Top-5 classes of images with checkpoint weights");
  cmd->add_option(
         "--weights,-w", cfg->weights,
         "A run folder or rla checkpoint (model, input size, normalisation and class names from it), "
         "or a torch.save state dict")
      ->required();
  cmd->add_option("--model,-m", cfg->model, "Model name (see `rla list`); needed for a plain state dict");
  cmd->add_option("--labels", cfg->labels, "Class names, one per line (default: the run's)");
  cmd->add_option("--classes", cfg->classes, "Number of classes (default: the model's)")->check(kPositive);
  add_model_options(cmd, cfg->flags);
  cmd->add_option("--top", cfg->top, "How many classes to print")->capture_default_str()->check(kPositive);
  cmd->add_flag("--eager", cfg->eager,
                "Run the eager model instead of the prepared fast path (BatchNorm folded, oneDNN; the same "
                "classes, logits within 1e-4)");
  cmd->add_option("images", cfg->images, "JPEG or PNG files")->required();
  return {cmd, [cfg]() {
            auto mc = cfg->flags.to_config();
            if (cfg->classes > 0) mc.num_classes = cfg->classes;
            inference::LoadOptions lo;
            lo.model = cfg->model;
            lo.config = mc;
            lo.execution = cfg->eager ? inference::Execution::kEager : inference::Execution::kFast;
            const auto m = inference::load_model(cfg->weights, lo);
            // A run knows its inputs; for a plain state dict, the family's defaults.
            const auto labels = cfg->labels.empty() ? m.class_names : io::read_labels(cfg->labels);
            for (const auto& path : cfg->images) {
              const auto logits = m.forward(io::load_image_input(path, m.input))[0];
              if (!cfg->labels.empty() && static_cast<int64_t>(labels.size()) != logits.size(0))
                throw std::invalid_argument(fmt::format("--labels {}: {} names for a model with {} classes",
                                                        cfg->labels, labels.size(), logits.size(0)));
              std::cout << path << "\n";
              for (const auto& p : io::top_k(logits, cfg->top, labels))
                std::cout << fmt::format("  {:6.2f}%  {:>5}  {}\n", 100.0 * p.probability, p.index, p.label);
            }
            return 0;
          }};
}

}  // namespace rla::app
