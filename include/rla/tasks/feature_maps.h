#pragma once
// Feature-map visualisation (docs/early_exit.md): for given images and depths, the main path's activation
// map (channel mean of |x_i|) and, on RLA nets, the state's (channel mean of |h_i|), each
// normalised to [0, 1], upsampled to the image and put over it as a colour map, in a labelled
// PNG grid (rows: images; columns: depths; models side by side).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rla/models/network.h"

namespace rla::tasks {

/// Activation maps after one block. depth d = the state after the d-th block (1-based).
struct DepthMaps {
  size_t depth = 0;
  torch::Tensor x;  ///< [N, H_d, W_d]: mean over channels of |x_d|
  torch::Tensor h;  ///< [N, H_d, W_d]: mean over channels of |h_d|; undefined on plain nets
};

/// Runs the stem and the blocks up to the deepest requested depth (eval mode, no grad) and
/// returns the maps in the order of `depths`. input [N, C, H, W], normalised as for the model.
std::vector<DepthMaps> activation_maps(models::NetworkImpl& net, const torch::Tensor& input,
                                       const std::vector<size_t>& depths);

/// "1,4,7": 1-based block numbers (validated against the net), or "stages": the last block of
/// every stage. Throws util::FieldError("depths") naming the bad value.
std::vector<size_t> parse_depths(const std::string& text, const models::NetworkImpl& net);

/// Min-max normalisation of one map [H, W] to [0, 1]; a constant map becomes all zeros.
torch::Tensor normalize_map(const torch::Tensor& map);
/// A jet-like colour map: v [H, W] in [0, 1] -> float RGB [3, H, W] in [0, 1]
/// (blue -> cyan -> yellow -> red, as matplotlib's "jet").
torch::Tensor jet_colors(const torch::Tensor& v);
/// The image alone as a tile: image01 float [C, H, W] (C = 1 or 3, values 0..1) -> uint8
/// [3, size, size] (bilinear).
torch::Tensor image_tile(const torch::Tensor& image01, int64_t size);
/// A map over its image: `map` [h, w] is normalised, upsampled (bilinear) to size x size and
/// blended over the grey version of image01: (1 - alpha) * grey + alpha * jet(map).
/// Returns uint8 [3, size, size].
torch::Tensor overlay_map(const torch::Tensor& image01, const torch::Tensor& map, int64_t size,
                          double alpha = 0.5);

/// A grid of equal square tiles with text labels around it.
struct TileGrid {
  std::string title;
  std::vector<std::string> footnotes;                         ///< lines under the grid
  std::vector<std::string> row_labels;                        ///< one per row; '\n' splits lines
  std::vector<std::string> column_labels;                     ///< one per column
  std::vector<std::pair<std::string, size_t>> column_groups;  ///< (label, columns spanned), left to right
  std::vector<std::vector<torch::Tensor>> tiles;              ///< [row][column], uint8 [3, T, T]
  bool colour_bar = true;                                     ///< the jet scale from 0 to 1
};

/// {width, height} in pixels of the PNG that save_tile_grid_png writes for `grid`.
std::pair<int64_t, int64_t> tile_grid_size(const TileGrid& grid);
/// Draws the grid (tiles pasted pixel for pixel, labels rendered by PLplot) and writes the PNG
/// atomically. Throws std::invalid_argument for ragged or empty grids, std::runtime_error when
/// built without PLplot or when the file cannot be written.
void save_tile_grid_png(const std::string& path, const TileGrid& grid);

struct VisualizeConfig {
  std::vector<std::string> runs;         ///< one or two run folders (their last.ckpt) or checkpoints
  std::vector<std::string> images;       ///< image files (PNG / JPEG), or
  std::vector<int64_t> dataset_indices;  ///< indices into the runs' test split
  std::string depths = "stages";         ///< see parse_depths
  std::string out;                       ///< the PNG to write
  int64_t tile = 112;                    ///< tile size (pixels)
  double alpha = 0.5;                    ///< colour-map opacity over the image
};

/// `rla visualize`: builds the feature-map grid of docs/early_exit.md for the runs and images and writes it
/// to config.out. Returns the grid (for printing and tests). Throws util::FieldError naming the field
/// of a bad option.
TileGrid run_visualize(const VisualizeConfig& config);

}  // namespace rla::tasks
