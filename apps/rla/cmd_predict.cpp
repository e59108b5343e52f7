// `rla predict`: top-5 classes of a model for image files (JPEG/PNG).
#include <fmt/format.h>
#include <torch/torch.h>

#include <iostream>

#include "commands.h"
#include "rla/io/model_io.h"

namespace rla::app {

namespace {
struct PredictConfig {
  std::string model, weights, labels;
  std::vector<std::string> images;
  int64_t classes = 0;
  int64_t top = 5;
};
}  // namespace

Runner add_predict_command(CLI::App& root) {
  auto cfg = std::make_shared<PredictConfig>();
  auto* cmd = root.add_subcommand("predict", "Top-5 classes of images with checkpoint weights");
  cmd->add_option("--model,-m", cfg->model, "Model name (see `rla list`)")->required();
  cmd->add_option("--weights,-w", cfg->weights, "Checkpoint (torch.save format)")->required();
  cmd->add_option("--labels", cfg->labels, "Class names, one per line");
  cmd->add_option("--classes", cfg->classes, "Number of classes (default: the model's)");
  cmd->add_option("--top", cfg->top, "How many classes to print")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("images", cfg->images, "JPEG or PNG files")->required();
  return [cfg]() {
    const auto& entry = models::find_model(cfg->model);
    models::ModelConfig mc;
    if (cfg->classes > 0) mc.num_classes = cfg->classes;
    auto net = io::load_model(entry.name, cfg->weights, mc);
    net->eval();
    const auto labels = cfg->labels.empty() ? std::vector<std::string>{} : io::read_labels(cfg->labels);
    torch::NoGradGuard no_grad;
    for (const auto& path : cfg->images) {
      const auto x = io::load_image_for(entry, path, entry.default_input().at(0));
      const auto logits = net->forward(x)[0];
      std::cout << path << "\n";
      for (const auto& p : io::top_k(logits, cfg->top, labels))
        std::cout << fmt::format("  {:6.2f}%  {:>5}  {}\n", 100.0 * p.probability, p.index, p.label);
    }
    return 0;
  };
}

}  // namespace rla::app
