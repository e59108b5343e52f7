// `rla summary`: per-layer output shapes, parameters, MACs and thop-compatible ops of a model.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "options.h"
#include "rla/engine/run.h"
#include "rla/models/registry.h"
#include "rla/models/summary.h"
#include "rla/util/parse.h"

namespace rla::app {

namespace {
struct SummaryConfig {
  std::string model = "rla_resnet50";
  std::string input;  // "C,H,W"; default: the model family's
  int64_t classes = 0;
  ModelFlags flags;
  bool json = false;
  bool totals_only = false;
};
}  // namespace

Command add_summary_command(CLI::App& root) {
  auto cfg = std::make_shared<SummaryConfig>();
  auto* cmd = root.add_subcommand(
      "summary", "Per-layer parameters, MACs and thop ops of a model (docs/models.md, Counting)");
  cmd->add_option("--model,-m", cfg->model, "Model name (see `rla list`)")->capture_default_str();
  cmd->add_option("--input", cfg->input, "Input C,H,W (default 3,224,224 ImageNet / 3,32,32 CIFAR)");
  cmd->add_option("--classes", cfg->classes, "Number of classes (default: the model's)")->check(kPositive);
  add_model_options(cmd, cfg->flags);
  cmd->add_flag("--json", cfg->json, "Print one JSON object instead of the table");
  cmd->add_flag("--totals", cfg->totals_only, "Print totals only");
  return {cmd, [cfg]() {
            const auto& entry = models::find_model(cfg->model);
            auto input =
                cfg->input.empty() ? entry.default_input() : util::parse_int_list(cfg->input, 3, "--input");
            models::ModelConfig mc = cfg->flags.to_config();
            if (cfg->classes > 0) mc.num_classes = cfg->classes;
            mc.in_channels = input[0];
            mc = models::resolve_config(entry, mc);
            auto net = entry.build(mc);
            auto s = models::summarize(*net, input);
            if (cfg->json) {
              auto j = models::summary_to_json(entry.name, s);
              j["config"] = engine::to_json(mc);
              if (cfg->totals_only) j.erase("layers");
              std::cout << j.dump(2) << "\n";
            } else {
              std::cout << fmt::format("{}: {}\n", entry.name, engine::to_json(mc).dump());
              std::cout << models::format_summary(entry.name, s, !cfg->totals_only);
            }
            return 0;
          }};
}

}  // namespace rla::app
