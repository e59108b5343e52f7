// `rla data pack-cifar10 SRC OUT`: a CIFAR-10 class-folder tree of PNG files (SRC/{train,test}/
// <class>/*.png) written in the official binary layout (docs/data.md).
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "rla/data/cifar.h"

namespace rla::app {

namespace {
struct PackConfig {
  std::string source, output;
};
}  // namespace

Command add_data_command(CLI::App& root) {
  auto cfg = std::make_shared<PackConfig>();
  auto* cmd = root.add_subcommand("data", "Dataset utilities (docs/data.md)");
  cmd->require_subcommand(1);
  auto* pack = cmd->add_subcommand(
      "pack-cifar10",
      "Write a CIFAR-10 PNG class-folder tree (SRC/{train,test}/<class>/*.png) as the official binary "
      "files (data_batch_1..5.bin, test_batch.bin, batches.meta.txt)");
  pack->add_option("source", cfg->source, "Folder holding train/ and test/ class folders")
      ->required()
      ->check(CLI::ExistingDirectory);
  pack->add_option("output", cfg->output, "Folder to write the binary files into (created)")->required();
  return {cmd, [cfg]() {
            const auto train = data::load_cifar10(cfg->source, true);
            const auto test = data::load_cifar10(cfg->source, false);
            const auto files = data::write_cifar10_binary(*train, *test, cfg->output);
            std::cout << fmt::format("read {}\nread {}\nwrote {} files to {}\n", train->description(),
                                     test->description(), files.size(), cfg->output);
            return 0;
          }};
}

}  // namespace rla::app
