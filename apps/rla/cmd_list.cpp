// `rla list`: every registered model with its parameter count and a one-line description.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "rla/models/registry.h"
#include "rla/models/summary.h"

namespace rla::app {

Command add_list_command(CLI::App& root) {
  auto* cmd = root.add_subcommand("list", "List every model with its parameter count");
  auto family = std::make_shared<std::string>();
  cmd->add_option("--family", *family, "Only this family")->check(CLI::IsMember({"imagenet", "cifar"}));
  return {cmd, [family]() {
            fmt::print("{:<28} {:<9} {:>12}  {}\n", "model", "family", "params", "description");
            for (const auto& e : models::model_registry()) {
              if (!family->empty() && e.family != *family) continue;
              auto net = models::create_model(e.name);
              fmt::print("{:<28} {:<9} {:>12}  {}\n", e.name, e.family,
                         models::with_commas(models::count_parameters(*net)), e.description);
            }
            return 0;
          }};
}

}  // namespace rla::app
