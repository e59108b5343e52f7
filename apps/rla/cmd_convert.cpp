// `rla convert IN OUT`: any supported PyTorch checkpoint in, a clean state dict out (an
// OrderedDict that torch.load(path, weights_only=True) and load_state_dict(strict=True) accept).
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "rla/io/model_io.h"

namespace rla::app {

namespace {
struct ConvertConfig {
  std::string input, output;
  std::string key;  // state dict key inside the checkpoint; empty: automatic
  std::string strip_prefix = "module.";
  bool keep_prefix = false;
};
}  // namespace

Command add_convert_command(CLI::App& root) {
  auto cfg = std::make_shared<ConvertConfig>();
  auto* cmd = root.add_subcommand(
      "convert", "Read a PyTorch checkpoint natively and write its state dict (docs/interop.md)");
  cmd->add_option("input", cfg->input, "Checkpoint to read (torch.save zip format)")->required();
  cmd->add_option("output", cfg->output, "State dict file to write")->required();
  cmd->add_option("--key", cfg->key,
                  "Key of the state dict in the checkpoint (default: state_dict, model, ...)");
  cmd->add_option("--strip-prefix", cfg->strip_prefix, "Prefix removed from every name")
      ->capture_default_str();
  cmd->add_flag("--keep-prefix", cfg->keep_prefix, "Keep names as they are (no prefix stripping)");
  return {cmd, [cfg]() {
            io::StateDictOptions opt;
            opt.key = cfg->key;
            opt.strip_prefix = cfg->keep_prefix ? "" : cfg->strip_prefix;
            const auto r = io::convert_checkpoint(cfg->input, cfg->output, opt);
            std::cout << fmt::format("wrote {}: {} tensors, {} values\n", cfg->output, r.tensors, r.elements);
            return 0;
          }};
}

}  // namespace rla::app
