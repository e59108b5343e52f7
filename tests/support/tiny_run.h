#pragma once
// The small training run the unit tests share: rla_resnet20 on the synthetic dataset, batch 32,
// lr 0.05, one thread, no progress output. Tests set the size, epochs, workers and extras.
#include <string>
#include <utility>

#include "rla/engine/trainer.h"

namespace rla::test {

inline engine::TrainConfig tiny_run_config(const std::string& out_dir) {
  engine::TrainConfig c;
  c.model = "rla_resnet20";
  c.data.dataset = "synthetic";
  c.run.batch_size = 32;
  c.schedule.base_lr = 0.05;
  c.run.threads = 1;
  c.run.quiet = true;
  c.run.out_dir = out_dir;
  return c;
}

/// Trains `cut` until it stops after `stop_after` steps (a resumable checkpoint), then resumes it
/// to the end; returns both results (the first must have stopped early).
inline std::pair<engine::TrainResult, engine::TrainResult> train_stopped_and_resumed(engine::TrainConfig cut,
                                                                                     int64_t stop_after) {
  cut.run.max_steps = stop_after;
  auto first = engine::train(cut);
  cut.run.max_steps = 0;
  cut.run.resume = true;
  return {first, engine::train(cut)};
}

}  // namespace rla::test
