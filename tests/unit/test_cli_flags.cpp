// The library names fields (util::FieldError); the CLI shows the user the flag they typed
// (apps/rla/flags.h): every error below is one line that names the flag, not the config.json key.
// And `rla train --show-recipe` prints the library's presets as command-line options.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "../support/test_util.h"

namespace {

namespace fs = std::filesystem;

struct Case {
  std::string args;      ///< after `rla --threads 1`
  std::string expected;  ///< in the one-line message
  std::string field;     ///< the field's config.json key, which the user must not read
};

TEST(CliFlags, LibraryFieldErrorsNameTheFlag) {
  const auto dir = rla::test::scratch_dir("flags", "out");
  const std::string train = "train --dataset synthetic --quiet --out " + (dir / "run").string() + " ";
  const std::vector<Case> cases = {
      {train + "--warmup-epochs -1", "--warmup-epochs must be >= 0, got -1", "warmup_epochs"},
      {train + "--lr -1", "--lr must be positive, got -1", ""},
      {train + "--schedule step --step-size 0", "--step-size must be positive", "step_size"},
      {train + "--schedule bogus",
       "--schedule: unknown 'bogus' (expected constant, step, multistep or cosine)", ""},
      {train + "--wd -1", "--wd must be >= 0, got -1", "weight_decay"},
      {train + "--betas 0.9,1", "--betas must be in [0, 1), got 0.9,1", ""},
      {train + "--clip-grad-norm -1", "--clip-grad-norm must be >= 0, got -1", "grad_clip"},
      {train + "--ema-decay 0.9 --ema-steps 0", "--ema-steps must be >= 1, got 0", "ema_steps"},
      {train + "--mixup -1", "--mixup / --cutmix must be >= 0 (0: off), got -1 / 0", "mixup_alpha"},
      {train + "--mixup 0.2 --exits block", "--mixup / --cutmix cannot train exit heads (--exits)",
       "cutmix_alpha"},
      {train + "--mixup 0.2 --no-augment", "--no-augment contradicts --mixup / --cutmix", "augment ="},
      {train + "--auto-augment trivialaugment --no-augment",
       "--no-augment contradicts --auto-augment / --random-erasing", "auto_augment"},
      {train + "--auto-augment randaugment --randaugment-m 31", "--randaugment-m must be a magnitude bin",
       "randaugment_magnitude"},
      {train + "--epochs 0", "--epochs must be positive, got 0", ""},
      {train + "--time-budget -1", "--time-budget must be a positive number of minutes",
       "time_budget_minutes"},
      {train + "--device tpu", "--device: 'tpu' is not a device", ""},
      {train + "--freeze-backbone",
       "--freeze-backbone trains exit heads post hoc: it needs --exits and --init-from", "init_checkpoint"},
      {train + "--model resnet20 --rla-channels 4", "--rla-channels applies only to models with RLA state",
       "rla_channels"},
      {"train --quiet --dataset cifar10 --out " + (dir / "cifar").string(),
       "--data-root is required for cifar10", "data_root"},
      {"train --quiet --dataset nosuch --out " + (dir / "run").string(), "unknown --dataset 'nosuch'", ""},
      {train + "--model nosuch", "unknown model 'nosuch'", ""},
      {"launch --nproc 0 -- train", "--nproc must be at least 1, got 0", ""},
      {"visualize /nonexistent --images x.png --tile 8 -o " + (dir / "v.png").string(),
       "--tile 8 is outside 32..1024", ""},
  };
  for (const auto& c : cases) {
    const auto r = rla::test::run_rla("--threads 1 " + c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.args << "\n" << r.output;
    if (!c.field.empty()) {
      EXPECT_EQ(r.output.find(c.field), std::string::npos) << c.args << "\n" << r.output;
    }
  }
  EXPECT_FALSE(fs::exists(dir / "run" / "last.ckpt"));
  fs::remove_all(dir);
}

TEST(CliFlags, ShowRecipePrintsThePresetsAsOptions) {
  const auto r = rla::test::run_rla("train --show-recipe");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(
      r.output,
      "--recipe paper: the official RLA-Net ImageNet recipe (docs/models.md)\n"
      "  --optimizer sgd --lr 0.1 --momentum 0.9 --no-nesterov --wd 1e-4 --norm-weight-decay 1e-4 --schedule "
      "step --step-size 30 --gamma 0.1 --warmup-epochs 0 --epochs 120 --batch-size 256 --label-smoothing 0 "
      "--auto-augment none --random-erasing 0 --mixup 0 --cutmix 0 --ema-decay 0 --clip-grad-norm 0\n"
      "--recipe modern: torchvision's ResNet-50 recipe of 2021 (docs/training.md; its batch is 8 x 128, "
      "scale "
      "--lr with --batch-size)\n"
      "  --optimizer sgd --lr 0.5 --momentum 0.9 --no-nesterov --wd 2e-5 --norm-weight-decay 0 --schedule "
      "cosine --warmup-epochs 5 --epochs 600 --batch-size 1024 --label-smoothing 0.1 --auto-augment "
      "trivialaugment --random-erasing 0.1 --mixup 0.2 --cutmix 1.0 --ema-decay 0.99998 --ema-steps 32 "
      "--clip-grad-norm 0\n");
  const auto one = rla::test::run_rla("train --show-recipe --recipe paper");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(one.output.rfind("--recipe paper:", 0), 0u) << one.output;
  EXPECT_EQ(one.output.find("--recipe modern"), std::string::npos) << one.output;
}

}  // namespace
