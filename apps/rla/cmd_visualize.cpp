// `rla visualize`: activation maps of the main path (|x|) and, on RLA nets, of the state (|h|)
// at chosen depths, over the input images, as a labelled PNG grid; two models side by side.
#include <fmt/format.h>

#include "commands.h"
#include "rla/tasks/feature_maps.h"

namespace rla::app {

Command add_visualize_command(CLI::App& root) {
  auto cfg = std::make_shared<tasks::VisualizeConfig>();
  auto* cmd =
      root.add_subcommand("visualize", "Feature maps (|x| and the RLA state |h|) by depth as a PNG grid");
  cmd->add_option("runs", cfg->runs, "Run folders (their last.ckpt) or checkpoints; two for a side-by-side")
      ->required()
      ->expected(1, 2);
  auto* images = cmd->add_option("--images", cfg->images, "Image files (PNG or JPEG), one grid row each");
  auto* indices = cmd->add_option("--dataset-indices", cfg->dataset_indices,
                                  "Indices into the runs' test split, comma-separated")
                      ->delimiter(',');
  images->excludes(indices);
  cmd->add_option("--depths", cfg->depths,
                  "Block numbers (1-based), comma-separated, or \"stages\" (the last block of every stage)")
      ->capture_default_str();
  cmd->add_option("--out,-o", cfg->out, "PNG file to write")->required();
  cmd->add_option("--tile", cfg->tile, "Tile size in pixels")->capture_default_str();
  cmd->add_option("--alpha", cfg->alpha, "Opacity of the colour map over the image")->capture_default_str();
  return {cmd, [cfg]() {
            const auto grid = tasks::run_visualize(*cfg);
            const auto [w, h] = tasks::tile_grid_size(grid);
            fmt::print("wrote {} ({}x{} pixels: {} images x {} columns)\n", cfg->out, w, h, grid.tiles.size(),
                       grid.column_labels.size());
            return 0;
          }};
}

}  // namespace rla::app
