// inference::load_model, the one loader: a run folder, an rla checkpoint and a torch.save state
// dict give the same model; the fast path (the default) equals the eager model; EMA weights,
// exit heads and data come on request; what cannot be loaded is refused with a message naming
// the file.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "../support/test_util.h"
#include "../support/tiny_run.h"
#include "rla/data/image_io.h"
#include "rla/inference/load.h"
#include "rla/io/state_dict.h"

namespace fs = std::filesystem;
using namespace rla;

namespace {

// One short run with a weight average, shared by the tests of this file.
const std::string& ema_run() {
  static const std::string dir = [] {
    const auto d = test::scratch_dir("load", "ema").string();
    auto c = test::tiny_run_config(d);
    c.data.synthetic_size = 256;
    c.run.epochs = 1;
    // torchvision's adjustment: an effective decay of 1 - 0.001 * 32 = 0.968
    c.regularization.ema_decay = 0.999;
    c.regularization.ema_steps = 1;
    engine::train(c);
    return d;
  }();
  return dir;
}

torch::Tensor batch(int64_t n) {
  torch::manual_seed(7);
  return torch::randn({n, 1, 28, 28});
}

}  // namespace

TEST(Load, FastByDefaultAndEqualToTheEagerModel) {
  const auto fast = inference::load_model(ema_run());
  ASSERT_TRUE(fast.is_fast());
  inference::LoadOptions o;
  o.execution = inference::Execution::kEager;
  const auto eager = inference::load_model(ema_run(), o);
  EXPECT_FALSE(eager.is_fast());
  EXPECT_EQ(fast.model, "rla_resnet20");
  EXPECT_EQ(fast.input_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(fast.input.channels, 1);
  EXPECT_EQ(fast.class_names.size(), 10u);
  ASSERT_TRUE(fast.run.has_value());
  EXPECT_EQ(fast.run->data.dataset, "synthetic");
  const auto x = batch(6);
  const auto a = fast.forward(x), b = eager.forward(x);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{6, 10}));
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-4);  // the parity tests' tolerance
  // The checkpoint file itself loads the same model.
  const auto ckpt = inference::load_model(engine::last_checkpoint_path(ema_run()), o);
  EXPECT_TRUE(torch::equal(ckpt.forward(x), b));
}

TEST(Load, StateDictNeedsTheModelNameAndLoadsTheSameWeights) {
  inference::LoadOptions eager;
  eager.execution = inference::Execution::kEager;
  const auto run = inference::load_model(ema_run(), eager);
  const auto sd_path = (test::scratch_dir("load", "sd") / "weights.pt").string();
  io::write_state_dict(sd_path, models::state_dict(*run.net));
  try {
    inference::load_model(sd_path, eager);
    FAIL() << "a state dict without a model name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("needs the name of the model"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
  }
  auto o = eager;
  o.model = "rla_resnet20";
  o.config.in_channels = 1;
  const auto sd = inference::load_model(sd_path, o);
  EXPECT_FALSE(sd.run.has_value());
  EXPECT_TRUE(sd.class_names.empty());
  const auto x = batch(3);
  EXPECT_TRUE(torch::equal(sd.forward(x), run.forward(x)));
  // A state dict has no weight average, data or exit heads.
  o.weights = inference::Weights::kAverage;
  EXPECT_THROW(inference::load_model(sd_path, o), std::invalid_argument);
  // Non-strict: a wrong class count loads what matches and says what did not.
  auto loose = eager;
  loose.model = "rla_resnet20";
  loose.config.in_channels = 1;
  loose.config.num_classes = 7;
  EXPECT_THROW(inference::load_model(sd_path, loose), std::runtime_error);
  loose.strict = false;
  const auto partial = inference::load_model(sd_path, loose);
  EXPECT_NE(partial.load_report.find("fc"), std::string::npos) << partial.load_report;
}

TEST(Load, AverageDataAndRefusals) {
  inference::LoadOptions o;
  o.execution = inference::Execution::kEager;
  const auto raw = inference::load_model(ema_run(), o);
  o.weights = inference::Weights::kAverage;
  o.with_data = true;
  const auto avg = inference::load_model(ema_run(), o);
  ASSERT_TRUE(avg.data.has_value());
  EXPECT_EQ(avg.data->test->num_classes(), 10);
  EXPECT_FALSE(torch::equal(avg.forward(batch(2)), raw.forward(batch(2))));
  // A run trained without exit heads has none; the fast path cannot carry them.
  o.weights = inference::Weights::kRaw;
  o.with_exits = true;
  EXPECT_THROW(inference::load_model(ema_run(), o), std::runtime_error);
  o.execution = inference::Execution::kFast;
  EXPECT_THROW(inference::load_model(ema_run(), o), std::invalid_argument);
  // The stored configuration wins; asking for another one is an error naming the field.
  inference::LoadOptions other;
  other.config.rla_channels = 16;
  try {
    inference::load_model(ema_run(), other);
    FAIL() << "a different k was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("rla_channels = 12, not 16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(inference::load_model("/nonexistent/run"), std::runtime_error);
}

// The data options replace the stored ones: another dataset, its folder and the crop size of
// image folders (`rla eval --image-size` ignored it once).
TEST(Load, DataOptionsReplaceTheStoredOnes) {
  const auto root = test::scratch_dir("load", "folder");
  for (const char* split : {"train", "val"})
    for (const char* cls : {"a", "b"}) {
      fs::create_directories(root / split / cls);
      data::write_png((root / split / cls / "x.png").string(), torch::full({3, 9, 7}, 128, torch::kUInt8));
    }
  inference::LoadOptions o;
  o.execution = inference::Execution::kEager;
  o.with_data = true;
  o.dataset = "folder";
  o.data_root = root.string();
  o.image_size = 40;
  const auto m = inference::load_model(ema_run(), o);
  ASSERT_TRUE(m.data.has_value());
  EXPECT_EQ(m.data->input_shape, (std::vector<int64_t>{3, 40, 40}));
  EXPECT_EQ(m.data->test->size(), 2u);
  o.image_size = 0;  // the stored crop size
  EXPECT_EQ(inference::load_model(ema_run(), o).data->input_shape, (std::vector<int64_t>{3, 224, 224}));
}

// The fast path keeps freed memory in the heap (LoadOptions::keep_heap), so that activations
// are not mapped and page-faulted in again on every forward. Checked in a fresh process (the
// threadsafe death-test style re-runs this test alone): before the load glibc serves a 64 MiB
// block with its own mapping (mallinfo2's hblks counts it), after it from the heap.
TEST(LoadDeathTest, FastPathKeepsLargeBlocksInTheHeap) {
#if defined(__GLIBC__)
  if (std::getenv("RLA_SYSTEM_MALLOC") != nullptr) GTEST_SKIP() << "RLA_SYSTEM_MALLOC is set";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto path = (test::scratch_dir("load", "heap") / "resnet20.pt").string();
  models::ModelConfig config;
  config.in_channels = 1;
  io::write_state_dict(path, models::state_dict(*models::create_model("resnet20", config)));
  const auto mapped_blocks = [] {
    void* volatile block = std::malloc(std::size_t{64} << 20);  // volatile: not elided
    const auto n = mallinfo2().hblks;
    std::free(block);
    return n;
  };
  EXPECT_EXIT(
      {
        const auto before = mapped_blocks();
        inference::LoadOptions eager;
        eager.model = "resnet20";
        eager.config = config;
        eager.execution = inference::Execution::kEager;
        inference::load_model(path, eager);  // the eager model leaves the heap alone
        const auto eager_after = mapped_blocks();
        auto fast = eager;
        fast.execution = inference::Execution::kFast;
        inference::load_model(path, fast);
        const auto fast_after = mapped_blocks();
        std::fprintf(stderr, "mapped blocks: %zu before, %zu eager, %zu fast\n", before, eager_after,
                     fast_after);
        std::exit(before >= 1 && eager_after == before && fast_after + 1 == before ? 0 : 1);
      },
      testing::ExitedWithCode(0), "mapped blocks");
#else
  GTEST_SKIP() << "glibc's heap only";
#endif
}
