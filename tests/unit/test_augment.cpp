// Augmentations (rla/data/augment.h) against Debian's python3-torchvision 0.14: every single op of
// TrivialAugmentWide / RandAugment at many magnitudes of both signs, pixel by pixel, on grey and
// RGB images made here (tests/parity/python/augment_reference.py computes torchvision's answers
// with autoaugment._apply_op); the magnitude tables; Mixup / CutMix against a line-by-line
// transcription of torchvision's references/classification/transforms.py; then the properties
// that need no reference: draws, determinism, RandomErasing's box bounds, target sums, CutMix's
// area-corrected lambda, and one-line errors for bad arguments.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "../support/test_util.h"
#include "rla/data/augment.h"
#include "rla/io/model_io.h"

namespace {

namespace fs = std::filesystem;
using namespace rla::data;

using rla::test::kPython;

bool python_has_torchvision() {
  return rla::test::python_has("torchvision");
}

// Test images with structure: a diagonal gradient, a bright square, a dark bar and noise.
torch::Tensor test_image(int64_t channels, int64_t height, int64_t width, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> noise(-20, 20);
  auto image = torch::empty({channels, height, width}, torch::kByte);
  auto a = image.accessor<uint8_t, 3>();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        int v = static_cast<int>((x * 255 / width + y * 128 / height + c * 60) % 256);
        if (y >= height / 4 && y < height / 2 && x >= width / 2 && x < width * 3 / 4) v = 250 - 10 * c;
        if (x >= 2 && x < 5) v = 5;
        a[c][y][x] = static_cast<uint8_t>(std::clamp(v + noise(gen), 0, 255));
      }
  return image;
}

// A low-contrast RGB image: channel 0 constant (AutoContrast keeps it; Equalize's step is 0),
// channel 1 two levels, channel 2 a narrow ramp.
torch::Tensor flat_image() {
  auto image = torch::full({3, 16, 16}, 77, torch::kByte);
  image[1].slice(1, 8).fill_(90);
  image[2].copy_(torch::arange(100, 116, torch::kByte).expand({16, 16}));
  return image;
}

const std::map<std::string, torch::Tensor>& images() {
  static const std::map<std::string, torch::Tensor> all = {
      {"grey28", test_image(1, 28, 28, 1)},
      {"rgb32", test_image(3, 32, 32, 2)},
      {"greyrect", test_image(1, 20, 28, 3)},  // H != W: the centre conventions of the geometry
      {"flat", flat_image()},
  };
  return all;
}

// (op, magnitude) cases: both policies' tables at several bins, both signs, and a few extras
// (right angles, truncation of translate / posterize, every posterize bit count).
std::vector<std::pair<AugmentOp, double>> op_cases() {
  std::vector<std::pair<AugmentOp, double>> cases;
  for (const auto op : all_augment_ops()) {
    std::set<double> mags;
    for (const auto& [policy, bins] : std::vector<std::pair<AugmentPolicy, std::vector<int>>>{
             {AugmentPolicy::kTrivialAugmentWide, {0, 3, 10, 17, 24, 30}},
             {AugmentPolicy::kRandAugment, {5, 9, 30}}}) {
      const auto space = augment_magnitudes(policy, op, 31, 32, 32);
      if (space.magnitudes.empty()) mags.insert(0.0);
      for (int b : bins) {
        if (space.magnitudes.empty()) break;
        mags.insert(space.magnitudes[b]);
        if (space.is_signed) mags.insert(-space.magnitudes[b]);
      }
    }
    if (op == AugmentOp::kRotate) mags.insert({90.0, -90.0, 180.0, 45.0, 12.5});
    if (op == AugmentOp::kTranslateX || op == AugmentOp::kTranslateY) mags.insert({2.9, -2.9, 40.0});
    if (op == AugmentOp::kShearX || op == AugmentOp::kShearY) mags.insert({0.5, 1.0});
    if (op == AugmentOp::kPosterize) mags.insert({0.0, 1.0, 3.0, 5.0, 7.0, 8.0, 6.9});
    if (op == AugmentOp::kSolarize) mags.insert({127.5, 1.0, 254.0});
    for (double m : mags) cases.emplace_back(op, m);
  }
  return cases;
}

// Writes images and cases, runs the reference once for the whole suite.
class AugmentParity : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!python_has_torchvision()) return;
    dir_ = fs::temp_directory_path() / ("rla_augment_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const auto cases = op_cases();
    auto table = torch::empty({static_cast<int64_t>(cases.size()), 2}, torch::kDouble);
    for (size_t k = 0; k < cases.size(); ++k) {
      table[k][0] = static_cast<double>(cases[k].first);
      table[k][1] = cases[k].second;
    }
    rla::io::write_tensor_file((dir_ / "cases.pt").string(), table);
    for (const auto& [name, image] : images())
      rla::io::write_tensor_file((dir_ / ("image_" + name + ".pt")).string(), image);
    torch::manual_seed(0);
    mix_images_ = torch::randn({4, 3, 8, 10});
    mix_labels_ = torch::tensor({0, 3, 4, 3}, torch::kLong);
    rla::io::write_tensor_file((dir_ / "mix_images.pt").string(), mix_images_);
    rla::io::write_tensor_file((dir_ / "mix_labels.pt").string(), mix_labels_);
    rla::io::write_tensor_file((dir_ / "mix_params.pt").string(),
                               torch::tensor({kMixLambda, 7.0, 2.0, 5.0}, torch::kDouble));
    const std::string cmd = std::string(kPython) + " " + RLA_SOURCE_DIR +
                            "/tests/parity/python/augment_reference.py " + dir_.string();
    const int status = std::system(cmd.c_str());
    script_ok_ = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  void SetUp() override {
    if (!python_has_torchvision()) GTEST_SKIP() << kPython << " cannot import torchvision";
    ASSERT_TRUE(script_ok_) << "augment_reference.py failed";
  }
  static std::string path(const std::string& name) { return (dir_ / name).string(); }

  static constexpr double kMixLambda = 0.7;
  static inline fs::path dir_;
  static inline bool script_ok_ = false;
  static inline torch::Tensor mix_images_, mix_labels_;
};

TEST_F(AugmentParity, EveryOpMatchesTorchvisionPixelForPixel) {
  // No tolerance is needed: every op, the geometric ones included, repeats torchvision's float32
  // computations with the same ATen calls (grid, grid_sampler, conv2d, blend), so even nearest
  // rounding on exact half-pixel ties agrees.
  const auto cases = op_cases();
  std::map<std::string, std::pair<int64_t, int64_t>> per_op;  // op -> (cases, differing pixels)
  for (const auto& [name, image] : images()) {
    const auto expected = rla::io::read_tensor_file(path("ops_" + name + ".pt"));
    ASSERT_EQ(expected.size(0), static_cast<int64_t>(cases.size()));
    for (size_t k = 0; k < cases.size(); ++k) {
      const auto [op, magnitude] = cases[k];
      const auto ours = apply_augment_op(op, image, magnitude);
      const auto want = expected[static_cast<int64_t>(k)];
      ASSERT_EQ(ours.sizes(), want.sizes()) << augment_op_name(op);
      ASSERT_EQ(ours.scalar_type(), torch::kByte);
      const auto diff = (ours.to(torch::kInt) - want.to(torch::kInt)).abs();
      const int64_t differing = diff.gt(0).sum().item<int64_t>();
      auto& [n, bad] = per_op[augment_op_name(op)];
      ++n;
      bad += differing;
      EXPECT_EQ(differing, 0) << augment_op_name(op) << "(" << magnitude << ") on " << name << ": max diff "
                              << diff.max().item<int>();
    }
  }
  for (const auto& [op, counts] : per_op)
    std::printf("%-12s %3ld cases x %zu images: %ld pixels differ from torchvision\n", op.c_str(),
                static_cast<long>(counts.first / static_cast<int64_t>(images().size())), images().size(),
                static_cast<long>(counts.second));
}

TEST_F(AugmentParity, MagnitudeTablesMatchTorchvision) {
  for (const auto& [name, image] : images()) {
    const auto file = path("tables_" + name + ".pt");
    for (const auto& [prefix, policy] : {std::pair{"ta", AugmentPolicy::kTrivialAugmentWide},
                                         std::pair{"ra", AugmentPolicy::kRandAugment}}) {
      const auto mags = rla::io::read_tensor_file(file, std::string(prefix) + "_magnitudes");
      const auto is_signed = rla::io::read_tensor_file(file, std::string(prefix) + "_signed");
      const auto scalar = rla::io::read_tensor_file(file, std::string(prefix) + "_scalar");
      for (const auto op : all_augment_ops()) {
        const auto i = static_cast<int64_t>(op);
        const auto ours = augment_magnitudes(policy, op, 31, image.size(1), image.size(2));
        EXPECT_EQ(ours.is_signed, is_signed[i].item<int64_t>() == 1) << prefix << " " << augment_op_name(op);
        EXPECT_EQ(ours.magnitudes.empty(), scalar[i].item<int64_t>() == 1)
            << prefix << " " << augment_op_name(op);
        for (size_t b = 0; b < ours.magnitudes.size(); ++b)
          EXPECT_EQ(ours.magnitudes[b], mags[i][static_cast<int64_t>(b)].item<double>())
              << prefix << " " << augment_op_name(op) << " bin " << b << " on " << name;
      }
    }
  }
}

TEST_F(AugmentParity, MixupAndCutmixMatchTheReferenceScripts) {
  const auto mixed = mixup_batch(mix_images_, mix_labels_, 5, kMixLambda);
  EXPECT_TRUE(torch::equal(mixed.images, rla::io::read_tensor_file(path("mix_out.pt"), "mixup_images")));
  EXPECT_TRUE(torch::equal(mixed.targets, rla::io::read_tensor_file(path("mix_out.pt"), "mixup_targets")));
  const auto cut = cutmix_batch(mix_images_, mix_labels_, 5, kMixLambda, /*cx=*/7, /*cy=*/2);
  EXPECT_TRUE(torch::equal(cut.images, rla::io::read_tensor_file(path("mix_out.pt"), "cutmix_images")));
  EXPECT_TRUE(torch::equal(cut.targets, rla::io::read_tensor_file(path("mix_out.pt"), "cutmix_targets")));
  EXPECT_EQ(cut.lambda, rla::io::read_tensor_file(path("mix_out.pt"), "cutmix_lambda").item<double>());
}

// ----- policies -------------------------------------------------------------------------------

TEST(AugmentPolicy, TrivialAugmentDrawsEveryOpBinAndSign) {
  Rng rng(123);
  std::map<AugmentOp, int> counts;
  std::map<AugmentOp, std::set<double>> seen;
  const int draws = 28000;
  for (int i = 0; i < draws; ++i) {
    const auto d = draw_trivial_augment_wide(rng);
    ++counts[d.op];
    seen[d.op].insert(d.magnitude);
    const auto space = augment_magnitudes(AugmentPolicy::kTrivialAugmentWide, d.op, 31, 0, 0);
    const double abs_mag = space.is_signed ? std::abs(d.magnitude) : d.magnitude;
    if (space.magnitudes.empty())
      EXPECT_EQ(d.magnitude, 0.0);
    else
      EXPECT_NE(std::find(space.magnitudes.begin(), space.magnitudes.end(), abs_mag), space.magnitudes.end());
  }
  for (const auto op : all_augment_ops()) {
    EXPECT_NEAR(counts[op], draws / kNumAugmentOps, draws / kNumAugmentOps / 5) << augment_op_name(op);
    const auto space = augment_magnitudes(AugmentPolicy::kTrivialAugmentWide, op, 31, 0, 0);
    std::set<double> distinct(space.magnitudes.begin(), space.magnitudes.end());
    // Signed ops: every bin with both signs (0 once); the others: every distinct table value.
    const size_t want = space.magnitudes.empty() ? 1
                        : space.is_signed        ? 2 * distinct.size() - 1
                                                 : distinct.size();
    EXPECT_EQ(seen[op].size(), want) << augment_op_name(op);
  }
}

TEST(AugmentPolicy, RandAugmentUsesOneBinWithRandomSigns) {
  const auto options = RandAugmentOptions().num_ops(2).magnitude(9);
  Rng rng(5);
  std::map<AugmentOp, std::set<double>> seen;
  for (int i = 0; i < 5000; ++i) {
    const auto d = draw_rand_augment(rng, options, 28, 28);
    seen[d.op].insert(d.magnitude);
  }
  for (const auto op : all_augment_ops()) {
    const auto space = augment_magnitudes(AugmentPolicy::kRandAugment, op, 31, 28, 28);
    std::set<double> want = {space.magnitudes.empty() ? 0.0 : space.magnitudes[9]};
    if (space.is_signed) want.insert(-space.magnitudes[9]);
    EXPECT_EQ(seen[op], want) << augment_op_name(op);
  }
}

TEST(AugmentPolicy, PoliciesApplyTheirDrawsAndAreDeterministic) {
  const auto image = images().at("rgb32");
  int changed = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng a(seed), b(seed), c(seed);
    const auto d = draw_trivial_augment_wide(b);
    const auto out = apply_trivial_augment_wide(image, a);
    EXPECT_TRUE(torch::equal(out, apply_augment_op(d.op, image, d.magnitude)));
    EXPECT_TRUE(torch::equal(out, apply_trivial_augment_wide(image, c)));
    changed += !torch::equal(out, image);
    const auto options = RandAugmentOptions().num_ops(3).magnitude(12);
    Rng e(seed), f(seed);
    auto expected = image;
    for (int k = 0; k < 3; ++k) {
      const auto dk = draw_rand_augment(f, options, 32, 32);
      expected = apply_augment_op(dk.op, expected, dk.magnitude);
    }
    EXPECT_TRUE(torch::equal(apply_rand_augment(image, e, options), expected));
  }
  EXPECT_GT(changed, 150);  // Identity, and the odd no-op draw, keep the image
}

TEST(AugmentPolicy, TransformsRoundTripThroughUint8) {
  const auto image = images().at("grey28");
  const auto as_float = image.to(torch::kFloat).div_(255.0);  // as the loader converts
  const auto trivial = trivial_augment_wide();
  const auto rand = rand_augment(2, 9);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng a(seed), b(seed);
    EXPECT_TRUE(torch::equal(trivial(as_float, a),
                             apply_trivial_augment_wide(image, b).to(torch::kFloat).div_(255.0)));
    Rng c(seed), d(seed);
    EXPECT_TRUE(torch::equal(rand(as_float, c), apply_rand_augment(image, d).to(torch::kFloat).div_(255.0)));
  }
  Rng rng(0);
  EXPECT_THROW(trivial(as_float - 0.5, rng), std::invalid_argument);  // after normalize: misplaced
}

// ----- RandomErasing --------------------------------------------------------------------------

TEST(AugmentErasing, BoxesRespectAreaAndRatioBounds) {
  const auto options = RandomErasingOptions();
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{224, 224}, {28, 28}, {32, 48}}) {
    Rng rng(7);
    int empty = 0;
    for (int i = 0; i < 3000; ++i) {
      const auto box = random_erasing_box(h, w, options, rng);
      if (box.height == 0 && box.width == 0) {
        ++empty;
        continue;
      }
      ASSERT_TRUE(box.top >= 0 && box.left >= 0 && box.top + box.height <= h && box.left + box.width <= w);
      ASSERT_TRUE(box.height < h && box.width < w);
      // h and w are rounded from exact sides whose product is the drawn area and whose quotient
      // is the drawn ratio, so the bounds hold up to half a pixel per side.
      const double bh = static_cast<double>(box.height), bw = static_cast<double>(box.width);
      const double area = static_cast<double>(h * w);
      EXPECT_LE((bh - 0.5) * (bw - 0.5), options.scale_max() * area + 1e-9);
      EXPECT_GE((bh + 0.5) * (bw + 0.5), options.scale_min() * area - 1e-9);
      if (bw > 0.5) {
        EXPECT_GE((bh + 0.5) / (bw - 0.5), options.ratio_min() - 1e-9);
      }
      EXPECT_LE((bh - 0.5) / (bw + 0.5), options.ratio_max() + 1e-9);
    }
    EXPECT_LT(empty, 300) << h << "x" << w;  // ten failed tries in a row are rare
  }
}

TEST(AugmentErasing, ErasesOneBoxWithProbabilityP) {
  const auto image = torch::rand({3, 28, 28}) + 1.0;  // never 0, so erased pixels are countable
  const auto erase = random_erasing(0.5);
  int erased = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    Rng a(seed), b(seed);
    const auto out = erase(image, a);
    std::uniform_real_distribution<double>(0.0, 1.0)(b);  // the p draw
    const auto box = random_erasing_box(28, 28, RandomErasingOptions(), b);
    const int64_t zeros = out.eq(0).sum().item<int64_t>();
    if (zeros == 0) {
      EXPECT_TRUE(torch::equal(out, image));
      continue;
    }
    ++erased;
    EXPECT_EQ(zeros, 3 * box.height * box.width);
    EXPECT_TRUE(out.slice(1, box.top, box.top + box.height)
                    .slice(2, box.left, box.left + box.width)
                    .eq(0)
                    .all()
                    .item<bool>());
  }
  EXPECT_NEAR(erased, 1000, 100);
  Rng rng(1);
  EXPECT_TRUE(torch::equal(random_erasing(0.0)(image, rng), image));
}

// ----- Mixup / CutMix -------------------------------------------------------------------------

TEST(AugmentMix, TargetsSumToOneAndCutmixLambdaIsTheShownArea) {
  // Sample i is the constant i + 1, so every pixel tells which sample it came from.
  const int64_t n = 6, k = 10;
  const auto batch =
      (torch::arange(n, torch::kFloat) + 1).view({n, 1, 1, 1}).expand({n, 3, 12, 16}).contiguous();
  const auto labels = torch::tensor({1, 4, 9, 0, 4, 7}, torch::kLong);
  const auto options = BatchMixOptions().num_classes(k);
  int cutmixes = 0, mixups = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Rng rng(seed);
    const auto m = mix_batch(batch, labels, options, rng);
    ASSERT_EQ(m.targets.sizes(), torch::IntArrayRef({n, k}));
    EXPECT_TRUE(torch::allclose(m.targets.sum(1), torch::ones({n}), 0, 1e-6));
    EXPECT_TRUE(m.lambda >= 0.0 && m.lambda <= 1.0);
    if (m.cutmix) {
      ++cutmixes;
      // The pasted pixels (from sample i - 1) cover exactly 1 - lambda of each image.
      const auto own = m.images.eq(batch).select(1, 0).sum({1, 2}).to(torch::kDouble) / (12.0 * 16.0);
      EXPECT_TRUE(torch::allclose(own, torch::full({n}, m.lambda, torch::kDouble)));
      EXPECT_NEAR(static_cast<double>(m.box.height * m.box.width), (1.0 - m.lambda) * 12 * 16, 1e-9);
    } else {
      ++mixups;
      EXPECT_TRUE(torch::allclose(m.images[2], batch[2] * m.lambda + batch[1] * (1 - m.lambda)));
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t own = labels[i].item<int64_t>(), prev = labels[(i + n - 1) % n].item<int64_t>();
      const double want_own = own == prev ? 1.0 : m.lambda;
      EXPECT_NEAR(m.targets[i][own].item<double>(), want_own, 1e-6);
    }
  }
  EXPECT_NEAR(cutmixes, 200, 40);  // switch_prob 0.5
  EXPECT_EQ(cutmixes + mixups, 400);
}

TEST(AugmentMix, SameGeneratorSameBatchAndInputsUntouched) {
  const auto batch = torch::rand({5, 3, 8, 8});
  const auto copy = batch.clone();
  const auto labels = torch::tensor({0, 1, 2, 1, 0}, torch::kLong);
  const auto options = BatchMixOptions().num_classes(3).prob(0.8);
  int unmixed = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Rng a(seed), b(seed);
    const auto x = mix_batch(batch, labels, options, a), y = mix_batch(batch, labels, options, b);
    EXPECT_TRUE(torch::equal(x.images, y.images) && torch::equal(x.targets, y.targets));
    EXPECT_EQ(a(), b());  // both generators advanced alike
    unmixed += x.lambda == 1.0 && !x.cutmix;
  }
  EXPECT_TRUE(torch::equal(batch, copy));
  EXPECT_NEAR(unmixed, 20, 12);
  Rng rng(0);
  const auto none = mix_batch(batch, labels, BatchMixOptions().num_classes(3).prob(0.0), rng);
  EXPECT_TRUE(torch::equal(none.images, batch));
  EXPECT_TRUE(torch::equal(none.targets, torch::one_hot(labels, 3).to(torch::kFloat)));
}

TEST(AugmentMix, BetaDrawsHaveBetaMoments) {
  for (double alpha : {0.2, 1.0, 4.0}) {
    Rng rng(3);
    double sum = 0, sum2 = 0;
    const int draws = 40000;
    for (int i = 0; i < draws; ++i) {
      const double x = sample_beta(alpha, rng);
      ASSERT_TRUE(x >= 0.0 && x <= 1.0);
      sum += x;
      sum2 += x * x;
    }
    const double mean = sum / draws, var = sum2 / draws - mean * mean;
    EXPECT_NEAR(mean, 0.5, 0.01) << alpha;
    EXPECT_NEAR(var, 1.0 / (4.0 * (2.0 * alpha + 1.0)), 0.01) << alpha;  // Beta(a, a)
  }
}

TEST(AugmentMix, SoftTargetCrossEntropyMatchesTorch) {
  torch::manual_seed(2);
  const auto logits = torch::randn({6, 5});
  const auto labels = torch::tensor({0, 4, 2, 2, 1, 3}, torch::kLong);
  namespace Fn = torch::nn::functional;
  for (double eps : {0.0, 0.1}) {
    const auto hard = Fn::cross_entropy(logits, labels, Fn::CrossEntropyFuncOptions().label_smoothing(eps));
    const auto one_hot = torch::one_hot(labels, 5).to(torch::kFloat);
    EXPECT_NEAR(soft_target_cross_entropy(logits, one_hot, eps).item<double>(), hard.item<double>(), 1e-6);
    const auto soft = torch::softmax(torch::randn({6, 5}), 1);
    const auto want = Fn::cross_entropy(logits, soft, Fn::CrossEntropyFuncOptions().label_smoothing(eps));
    EXPECT_NEAR(soft_target_cross_entropy(logits, soft, eps).item<double>(), want.item<double>(), 1e-6);
  }
}

// ----- bad arguments --------------------------------------------------------------------------

template <typename Fn>
void expect_invalid(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning '" << part << "'";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(part), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(AugmentArgs, BadArgumentsThrowOneLineErrors) {
  const auto grey = images().at("grey28");
  expect_invalid([&] { apply_augment_op(AugmentOp::kRotate, grey.to(torch::kFloat), 10); }, "Float");
  expect_invalid(
      [&] {
        apply_augment_op(AugmentOp::kEqualize, torch::zeros({2, 4, 4}, torch::kByte), 0);
      },
      "[2, 4, 4]");
  expect_invalid([&] { apply_augment_op(AugmentOp::kBrightness, grey, -1.5); }, "-1.5");
  expect_invalid([&] { apply_augment_op(AugmentOp::kPosterize, grey, 9); }, "9");
  expect_invalid([&] { apply_augment_op(AugmentOp::kSolarize, grey, 256); }, "256");
  expect_invalid([&] { apply_augment_op(AugmentOp::kShearX, grey, std::nan("")); }, "nan");
  expect_invalid([] { rand_augment(0, 9); }, "num_ops must be >= 1, got 0");
  expect_invalid([] { rand_augment(2, 31); }, "magnitude must be in [0, 30], got 31");
  expect_invalid([] { rand_augment(2, -1); }, "got -1");
  expect_invalid([] { trivial_augment_wide(1); }, "num_magnitude_bins must be >= 2, got 1");
  expect_invalid([] { random_erasing(1.5); }, "p must be in [0, 1], got 1.5");
  expect_invalid([] { random_erasing(-0.1); }, "-0.1");
  expect_invalid([] { random_erasing(RandomErasingOptions().scale_min(0.5).scale_max(0.2)); }, "(0.5, 0.2)");
  expect_invalid([] { random_erasing(RandomErasingOptions().ratio_min(0)); }, "ratio_min");
  const auto batch = torch::rand({2, 1, 4, 4});
  const auto labels = torch::tensor({0, 1}, torch::kLong);
  Rng rng(0);
  expect_invalid([&] { mix_batch(batch, labels, BatchMixOptions().num_classes(2).mixup_alpha(-1), rng); },
                 "-1");
  expect_invalid(
      [&] { mix_batch(batch, labels, BatchMixOptions().num_classes(2).mixup_alpha(0).cutmix_alpha(0), rng); },
      "both 0");
  expect_invalid([&] { mix_batch(batch, labels, BatchMixOptions().num_classes(2).prob(1.5), rng); }, "prob");
  expect_invalid([&] { mix_batch(batch, labels, BatchMixOptions().num_classes(0), rng); }, "num_classes");
  expect_invalid(
      [&] {
        mix_batch(batch, torch::tensor({0, 2}, torch::kLong), BatchMixOptions().num_classes(2), rng);
      },
      "[0, 2]");
  expect_invalid([&] { mixup_batch(batch, labels, 2, 1.5); }, "1.5");
  expect_invalid([&] { cutmix_batch(batch, labels, 2, 0.5, 4, 0); }, "(4, 0)");
  expect_invalid([&] { sample_beta(0.0, rng); }, "alpha");
  expect_invalid([&] { soft_target_cross_entropy(torch::zeros({2, 3}), torch::zeros({2, 4})); }, "[2, 4]");
}

}  // namespace
