#pragma once
// The small training run the unit tests share: rla_resnet20 on the synthetic dataset, batch 32,
// lr 0.05, one thread, no progress output. Tests set the size, epochs, workers and extras.
#include <string>

#include "rla/engine/trainer.h"

namespace rla::test {

inline engine::TrainConfig tiny_run_config(const std::string& out_dir) {
  engine::TrainConfig c;
  c.model = "rla_resnet20";
  c.data.dataset = "synthetic";
  c.batch_size = 32;
  c.schedule.base_lr = 0.05;
  c.threads = 1;
  c.quiet = true;
  c.out_dir = out_dir;
  return c;
}

}  // namespace rla::test
