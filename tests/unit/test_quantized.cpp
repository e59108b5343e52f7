// int8 post-training quantization (inference/quantized.h, `rla quantize`, `eval/infer --int8`):
// the int8 forward against the float one on a fixed batch, save → load equality, and the
// command's round trip and one-line errors on a small trained run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "../support/batchnorm.h"
#include "../support/test_util.h"
#include "../support/tiny_run.h"
#include "rla/inference/fast_inference.h"
#include "rla/inference/int8_conv.h"
#include "rla/inference/int8_kernels.h"
#include "rla/inference/quantized.h"
#include "rla/io/model_io.h"
#include "rla/models/registry.h"

namespace {

namespace fs = std::filesystem;
using namespace rla;

TEST(Int8, MatchesTheFloatForwardOnAFixedBatchAndSurvivesSaveAndLoad) {
  torch::manual_seed(3);
  for (const std::string model : {"resnet20", "rla_resnet20"}) {
    SCOPED_TRACE(model);
    models::ModelConfig config;
    config.in_channels = 3;
    auto net = models::create_model(model, config);
    test::randomize_batchnorms(*net);
    net->eval();
    inference::QuantizedNetwork q(*net, {3, 32, 32});
    for (int i = 0; i < 4; ++i) q.calibrate(torch::randn({16, 3, 32, 32}));
    q.finalize();
    EXPECT_EQ(q.calibration_images(), 64);
    const auto counts = q.counts();
    EXPECT_EQ(counts.int8_convolutions, model == "resnet20" ? 21 : 39);
    EXPECT_GT(counts.fused_relus, 0);
    EXPECT_EQ(counts.int8_adds, 9);
    EXPECT_EQ(counts.int8_concats, model == "resnet20" ? 0 : 9);

    torch::NoGradGuard no_grad;
    const auto x = torch::randn({8, 3, 32, 32});
    const auto want = net->forward(x);
    const auto got = q.forward(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    // uint8 activations over ~20 layers: a few percent of the logit range, never garbage.
    const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(rel, 0.08) << "relative error " << rel;
    EXPECT_GT(rel, 0.0);  // it did run in int8

    const auto dir = test::scratch_dir("int8", model);
    const auto path = (dir / "m.int8.pt").string();
    q.save(path, model);
    EXPECT_EQ(inference::QuantizedNetwork::describe(path).first, model);
    auto loaded = inference::QuantizedNetwork::load(path, *net, model);
    EXPECT_TRUE(torch::equal(loaded.forward(x), got));  // the same int8 weights and scales
    // Empty images or batches and other channel counts are refused, by the float fast path too.
    inference::FastNetwork fast(net);
    for (const auto& bad :
         {torch::zeros({2, 3, 0, 32}), torch::zeros({2, 3, 32, 0}), torch::zeros({0, 3, 32, 32})}) {
      EXPECT_THROW(q.forward(bad), std::invalid_argument) << bad.sizes();
      EXPECT_THROW(fast.forward(bad), c10::Error) << bad.sizes();
    }
    EXPECT_THROW(q.forward(torch::zeros({2, 1, 32, 32})), std::invalid_argument);
    // Every convolution ran as a prepared oneDNN primitive (where the build has oneDNN's headers).
    EXPECT_EQ(q.counts().prepared_convolutions,
              inference::int8::prepared_int8_convs_enabled() ? counts.int8_convolutions : 0);
    EXPECT_EQ(loaded.counts().prepared_convolutions, q.counts().prepared_convolutions);
    // ... and every residual add ran as the post-op of the convolution before it.
    EXPECT_EQ(q.counts().fused_adds, inference::int8::fused_int8_adds_enabled() ? 9 : 0);
    // The file holds int8 weights: about a quarter of the float parameters' bytes.
    int64_t params = 0;
    for (const auto& p : net->parameters()) params += p.numel();
    EXPECT_LT(static_cast<double>(fs::file_size(path)), 0.45 * 4.0 * static_cast<double>(params));
    // Another model's structure is refused by name.
    auto other = models::create_model(model == "resnet20" ? "rla_resnet20" : "resnet20", config);
    EXPECT_THROW(inference::QuantizedNetwork::load(path, *other), std::invalid_argument);
    fs::remove_all(dir);
  }
}

at::Tensor random_quint8(at::IntArrayRef shape, double scale, int64_t zero_point) {
  const auto codes = torch::randint(0, 256, shape, torch::kLong).to(torch::kFloat);
  return at::quantize_per_tensor((codes - zero_point) * scale, scale, zero_point, torch::kQUInt8)
      .contiguous(at::MemoryFormat::ChannelsLast);
}

/// Selects LibTorch's oneDNN quantized engine (what the prepared convolutions reproduce, and what
/// inference::quantize selects) and says whether prepared int8 convolutions are on.
bool use_onednn_engine() {
  const auto engines = at::globalContext().supportedQEngines();
  if (std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) == engines.end()) return false;
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  return inference::int8::prepared_int8_convs_enabled();
}

/// How many uint8 codes of got and want differ, after checking that none differs by more than 1.
int64_t codes_off_by_one(const at::Tensor& got, const at::Tensor& want) {
  const auto diff = (got.int_repr().to(torch::kInt) - want.int_repr().to(torch::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 1);
  return diff.sum().item<int64_t>();
}

// The prepared int8 convolution is quantized::conv2d (conv2d_relu) on oneDNN without ATen's per-call
// work: the same codes over the zoo's kinds of convolution (3x3 and 1x1, stride 1 and 2, 12-channel
// state inputs, the 7x7 stem, with and without bias and ReLU).
TEST(Int8, PreparedConvolutionEqualsQuantizedConv2d) {
  if (!use_onednn_engine()) GTEST_SKIP() << "no oneDNN headers in this build, or RLA_PREPARED_INT8=0";
  torch::manual_seed(11);
  auto& dispatcher = c10::Dispatcher::singleton();
  const auto prepack = dispatcher.findSchemaOrThrow("quantized::conv2d_prepack", "");
  const auto conv = dispatcher.findSchemaOrThrow("quantized::conv2d", "new");
  const auto conv_relu = dispatcher.findSchemaOrThrow("quantized::conv2d_relu", "new");
  const auto call = [](const c10::OperatorHandle& op, torch::jit::Stack stack) {
    op.callBoxed(&stack);
    return stack.at(0);
  };
  struct Case {
    int64_t c_in, c_out, kernel, stride, size;
    bool bias, relu;
  };
  const double in_scale = 0.05, out_scale = 0.07;
  const int64_t in_zero_point = 120;
  for (const auto& c : {Case{16, 16, 3, 1, 9, true, false}, Case{28, 16, 3, 1, 8, true, true},
                        Case{16, 12, 1, 1, 7, true, false}, Case{12, 12, 3, 1, 8, false, false},
                        Case{32, 64, 3, 2, 9, true, true}, Case{16, 32, 1, 2, 8, false, false},
                        Case{3, 16, 7, 2, 15, true, true}}) {
    SCOPED_TRACE(testing::Message() << c.c_in << "->" << c.c_out << " k" << c.kernel << " s" << c.stride);
    const auto x = random_quint8({3, c.c_in, c.size, c.size}, in_scale, in_zero_point);
    const auto w = torch::randn({c.c_out, c.c_in, c.kernel, c.kernel}) * 0.1;
    const auto w_scales = (w.abs().amax({1, 2, 3}) / 127.0).to(torch::kDouble);
    const auto qw =
        at::quantize_per_channel(w, w_scales, torch::zeros({c.c_out}, torch::kLong), 0, at::kQInt8);
    const auto bias = c.bias ? torch::randn({c.c_out}) : torch::Tensor();
    const std::vector<int64_t> stride{c.stride, c.stride}, padding{c.kernel / 2, c.kernel / 2},
        dilation{1, 1};
    const int64_t out_zero_point = c.relu ? 0 : 128;
    const auto packed = call(
        prepack, {qw, c.bias ? c10::IValue(bias) : c10::IValue(), stride, padding, dilation, int64_t{1}});
    const auto want = call(c.relu ? conv_relu : conv, {x, packed, out_scale, out_zero_point}).toTensor();
    auto p =
        inference::int8::PreparedConv::create(qw, bias, stride, padding, dilation, /*groups=*/1,
                                              {in_scale, in_zero_point, out_scale, out_zero_point, c.relu});
    ASSERT_TRUE(p);
    const auto got = p->run(x);
    ASSERT_TRUE(got.defined());
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_EQ(got.q_scale(), out_scale);
    EXPECT_EQ(got.q_zero_point(), out_zero_point);
    EXPECT_EQ(codes_off_by_one(got, want), 0);
    // Batch 1 on two threads (a small layer's primitive is then built for one thread): the same codes.
    const int threads = at::get_num_threads();
    at::set_num_threads(2);
    const auto x1 = x.narrow(0, 0, 1).contiguous(at::MemoryFormat::ChannelsLast);
    const auto want1 = call(c.relu ? conv_relu : conv, {x1, packed, out_scale, out_zero_point}).toTensor();
    const auto got1 = p->run(x1);
    at::set_num_threads(threads);
    ASSERT_TRUE(got1.defined());
    EXPECT_EQ(codes_off_by_one(got1, want1), 0);
    // An input in other units or another layout is declined (the graph then calls quantized::conv2d).
    EXPECT_FALSE(p->run(random_quint8({3, c.c_in, c.size, c.size}, 0.04, in_zero_point)).defined());
    EXPECT_FALSE(p->run(x.contiguous()).defined());
  }
}

// With a residual, the prepared convolution is quantize(relu(conv(x) + residual)) in one rounding:
// within one code of that computed in float from the same int8 values, and mostly equal.
TEST(Int8, PreparedConvolutionAddsTheResidualInOneRounding) {
  if (!use_onednn_engine()) GTEST_SKIP() << "no oneDNN headers in this build, or RLA_PREPARED_INT8=0";
  torch::manual_seed(12);
  const double in_scale = 0.05, out_scale = 0.06, residual_scale = 0.04;
  const int64_t in_zero_point = 120;
  struct Case {
    int64_t kernel;
    bool bias, relu;
    int64_t residual_zero_point;  // 0 with no bias: no bias at all reaches oneDNN
  };
  // The 3x3 of the CIFAR blocks and the 1x1 expansion of the bottleneck blocks (another kernel).
  for (const auto& c : {Case{3, true, true, 100}, Case{3, true, false, 100}, Case{1, true, true, 100},
                        Case{1, false, true, 0}, Case{1, false, false, 0}}) {
    SCOPED_TRACE(testing::Message() << "k" << c.kernel << " bias " << c.bias << " relu " << c.relu);
    const auto x = random_quint8({4, 16, 9, 9}, in_scale, in_zero_point);
    const auto residual = random_quint8({4, 32, 9, 9}, residual_scale, c.residual_zero_point);
    // Weight codes within +-63: without VNNI (AVX2), oneDNN 2.6's int8 kernels sum uint8 x int8
    // products in pairs into 16 bits, which saturate for larger codes (ATen's quantized::conv2d
    // alike); within 7 bits the float reference holds on every ISA.
    const auto w_scales = torch::rand({32}, torch::kDouble) * 0.004 + 0.001;
    const auto w = torch::randint(-63, 64, {32, 16, c.kernel, c.kernel}).to(torch::kDouble) *
                   w_scales.view({32, 1, 1, 1});
    const auto qw = at::quantize_per_channel(w.to(torch::kFloat), w_scales, torch::zeros({32}, torch::kLong),
                                             0, at::kQInt8);
    const auto bias = c.bias ? torch::randn({32}) : torch::Tensor();
    const int64_t out_zero_point = c.relu ? 0 : 128;
    inference::int8::Int8ConvUnits units{in_scale, in_zero_point, out_scale, out_zero_point, c.relu};
    units.residual_scale = residual_scale;
    units.residual_zero_point = c.residual_zero_point;
    const std::vector<int64_t> pad{c.kernel / 2, c.kernel / 2};
    auto p = inference::int8::PreparedConv::create(qw, bias, {1, 1}, pad, {1, 1}, /*groups=*/1, units);
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->run(x).defined());  // created with a residual: declined without one
    const auto residual_codes = residual.int_repr().clone();
    const auto got = p->run(x, residual);
    ASSERT_TRUE(got.defined());
    auto sum = torch::conv2d(x.dequantize().to(torch::kDouble), qw.dequantize().to(torch::kDouble),
                             c.bias ? bias.to(torch::kDouble) : torch::Tensor(), 1, pad) +
               residual.dequantize().to(torch::kDouble);
    if (c.relu) sum = sum.relu();
    const auto want =
        at::quantize_per_tensor(sum.to(torch::kFloat), out_scale, out_zero_point, torch::kQUInt8);
    EXPECT_EQ(got.q_scale(), out_scale);
    EXPECT_LE(codes_off_by_one(got, want), want.numel() / 100);
    EXPECT_TRUE(torch::equal(residual.int_repr(), residual_codes));  // read, not written
  }
}

TEST(Int8, ContinuedFractionTanhIsWithinOneMillionthOfTanh) {
  double worst = 0;
  for (int i = -400000; i <= 400000; ++i) {
    const float x = static_cast<float>(i) * 5e-5f;  // [-20, 20]
    worst = std::max(worst, std::abs(static_cast<double>(inference::int8::tanh_continued_fraction(x)) -
                                     std::tanh(static_cast<double>(x))));
  }
  EXPECT_LT(worst, 1e-6);
}

TEST(Int8, StateUpdateAndTanhKernelsMatchTheFloatOpsTheyReplace) {
  torch::manual_seed(5);
  // 9 x 7 pixels per image: the kernel's 16-pixel blocks end part-way. a's scale 0.2 saturates tanh.
  for (const double a_scale : {0.031, 0.2}) {
    SCOPED_TRACE(a_scale);
    const auto a = random_quint8({4, 12, 9, 7}, a_scale, 131);
    const auto h = random_quint8({4, 12, 9, 7}, 0.0078, 127);
    const auto factor = torch::randn({12, 1, 1});
    // tanh's range [-1, 1] as calibration sets it: saturated values land on the half-code boundary.
    const double scale = 2.0 / 255, zero_point = 128;
    const auto z = a.dequantize().to(torch::kDouble) + h.dequantize().to(torch::kDouble) * factor;
    const auto got = inference::int8::state_update(a, h, factor, scale, zero_point);
    EXPECT_EQ(got.q_scale(), scale);
    EXPECT_EQ(got.q_zero_point(), zero_point);
    // Every code is a nearest code of the exact tanh (a tie, at saturation, may go either way) ...
    const auto error = (got.dequantize().to(torch::kDouble) - z.tanh()).abs().max().item<double>();
    EXPECT_LE(error, scale * (0.5 + 1e-3));
    // ... and away from saturation the codes are those of the float ops it replaces, but for a
    // value within float rounding of a code boundary.
    const auto want = at::quantize_per_tensor(at::tanh(a.dequantize() + h.dequantize() * factor), scale,
                                              zero_point, torch::kQUInt8);
    const int64_t off = codes_off_by_one(got, want);
    if (a_scale < 0.1) {
      EXPECT_LE(off, a.numel() / 1000);
    }
    // The tanh alone (the first block, whose state starts at zero), through its table.
    const auto t = inference::int8::tanh(a, scale, zero_point);
    const auto t_exact = a.dequantize().to(torch::kDouble).tanh();
    EXPECT_LE((t.dequantize().to(torch::kDouble) - t_exact).abs().max().item<double>(), scale * (0.5 + 1e-3));
  }
  // The channel concatenation of two tensors with their own scales into a third.
  const auto x = random_quint8({2, 20, 5, 3}, 0.04, 90), y = random_quint8({2, 12, 5, 3}, 0.01, 140);
  const auto cat = inference::int8::channel_cat({x, y}, 0.05, 120);
  const auto cat_want =
      at::quantize_per_tensor(at::cat({x.dequantize(), y.dequantize()}, 1), 0.05, 120, torch::kQUInt8);
  ASSERT_EQ(cat.sizes(), cat_want.sizes());
  EXPECT_LE(codes_off_by_one(cat, cat_want), cat.numel() / 1000);
  // A part already in the output's scale and zero point is copied code for code.
  const auto same = random_quint8({2, 20, 5, 3}, 0.05, 120);
  const auto copied = inference::int8::channel_cat({same, y}, 0.05, 120);
  EXPECT_TRUE(torch::equal(copied.int_repr().narrow(1, 0, 20), same.int_repr()));
  // Max pooling on the codes is exact: the stem's 3x3/2 (padding 1) and an uneven 2x3/(1,2) without.
  const auto q = random_quint8({2, 16, 13, 11}, 0.05, 100);
  for (const auto& [kernel, stride, padding] :
       {std::tuple<std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>>{{3, 3}, {2, 2}, {1, 1}},
        {{2, 3}, {1, 2}, {0, 0}}}) {
    const auto pooled = inference::int8::max_pool2d(q, kernel, stride, padding);
    const auto want = at::quantize_per_tensor(at::max_pool2d(q.dequantize(), kernel, stride, padding),
                                              q.q_scale(), q.q_zero_point(), torch::kQUInt8);
    ASSERT_EQ(pooled.sizes(), want.sizes());
    EXPECT_TRUE(torch::equal(pooled.int_repr(), want.int_repr()));
  }
  // Average pooling on the codes: the RLA state's 2x2/2 with ceil mode (odd sizes: a last window
  // part outside), and 3x3/2 with padding counted and not counted.
  for (const bool ceil_mode : {true, false}) {
    for (const bool include_pad : {true, false}) {
      for (const auto& [kernel, stride, padding] :
           {std::tuple<std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>>{
                {2, 2}, {2, 2}, {0, 0}},
            {{3, 3}, {2, 2}, {1, 1}}}) {
        const auto pooled = inference::int8::avg_pool2d(q, kernel, stride, padding, ceil_mode, include_pad);
        // The mean of codes is often a tie (x.5) that float rounding breaks either way: every code
        // must be a nearest code of the exact mean.
        const auto exact = at::avg_pool2d(q.dequantize().to(torch::kDouble), kernel, stride, padding,
                                          ceil_mode, include_pad);
        ASSERT_EQ(pooled.sizes(), exact.sizes());
        EXPECT_LE((pooled.dequantize().to(torch::kDouble) - exact).abs().max().item<double>(),
                  q.q_scale() * (0.5 + 1e-4));  // 1e-4: the float dequantize
      }
    }
  }
}

TEST(Int8, FusedStateUpdateGivesTheLogitsOfTheUnfusedGraph) {
  struct Case {
    std::string model;
    int64_t size, blocks, pools;  ///< pools: the stem's max pool, the state's average pools
  };
  for (const auto& c : {Case{"rla_resnet20", 32, 9, 2}, Case{"rla_resnet29_s", 32, 9, 2},
                        Case{"rla_resnet50_se", 64, 16, 4}, Case{"rla_mobilenetv2_k12", 64, 17, 4}}) {
    SCOPED_TRACE(c.model);
    torch::manual_seed(11);
    models::ModelConfig config;
    auto net = models::create_model(c.model, config);
    test::randomize_batchnorms(*net);
    net->eval();
    const std::vector<int64_t> shape{3, c.size, c.size};
    setenv("RLA_FUSED_INT8_STATE", "0", 1);
    inference::QuantizedNetwork unfused(*net, shape);
    unsetenv("RLA_FUSED_INT8_STATE");
    inference::QuantizedNetwork fused(*net, shape);
    for (int i = 0; i < 2; ++i) {
      const auto batch = torch::randn({4, 3, c.size, c.size});
      unfused.calibrate(batch);
      fused.calibrate(batch);
    }
    unfused.finalize();
    fused.finalize();
    EXPECT_EQ(unfused.counts().int8_state_updates, 0);
    EXPECT_EQ(fused.counts().int8_state_updates, c.blocks);
    EXPECT_EQ(fused.counts().int8_pools, c.pools);
    EXPECT_EQ(fused.counts().float_ops, unfused.counts().float_ops - (c.blocks > 0 ? 2 * c.blocks - 1 : 0));
    const auto x = torch::randn({4, 3, c.size, c.size});
    const auto want = unfused.forward(x), got = fused.forward(x);
    const auto reference = net->forward(x);
    const auto rel = [](const at::Tensor& p, const at::Tensor& q) {
      return ((p - q).abs().max() / q.abs().max()).item<double>();
    };
    // The two differ by a code here and there (ties at saturation, float rounding at a boundary),
    // which random weights carry to the logits at the size of int8's own error.
    EXPECT_LT(rel(got, reference), 0.08);
    EXPECT_LT(rel(want, reference), 0.08);
    EXPECT_LT(rel(got, want), 0.05);
  }
}

TEST(Int8, CommandQuantizesARunThatEvalAndInferRun) {
  const auto dir = test::scratch_dir("int8", "cli");
  const auto run = (dir / "run").string();
  auto r = test::run_rla(
      "--threads 1 train --dataset synthetic --limit-train 256 --limit-test 128 --epochs 2 --batch-size 32 "
      "-q "
      "--out " +
      run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_rla("--threads 1 quantize " + run + " --calib 64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(run) / "model.int8.pt")) << r.output;
  const auto top1 = [](const std::string& json) {
    const auto at = json.rfind("\"top1\": ");
    return at == std::string::npos ? -1.0 : std::stod(json.substr(at + 8));
  };
  const auto fp32 = test::run_rla("--threads 1 eval " + run + " --json");
  const auto int8 = test::run_rla("--threads 1 eval " + run + " --int8 --json");
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  ASSERT_EQ(int8.exit_code, 0) << int8.output;
  EXPECT_NE(int8.output.find("\"int8\": true"), std::string::npos);
  EXPECT_NEAR(top1(int8.output), top1(fp32.output), 3.0);  // 128 test images: 3 points = 4 images

  const auto input = (dir / "x.pt").string(), logits = (dir / "y.pt").string();
  io::write_tensor_file(input, torch::rand({5, 1, 28, 28}));
  r = test::run_rla("--threads 1 infer -w " + run + " -i " + input + " -o " + logits + " --int8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(io::read_tensor_file(logits).sizes(), torch::IntArrayRef({5, 10}));

  const auto other = (dir / "other").string();
  r = test::run_rla(
      "--threads 1 train --dataset synthetic --model resnet20 --limit-train 64 --limit-test 32 "
      "--epochs 1 --batch-size 32 -q --out " +
      other);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto bad_out = (dir / "bad.int8.pt").string();
  for (const std::string& bad :
       {"quantize " + run + " --calib 8 -o " + bad_out,       // too few calibration images
        "quantize " + run + " --calib 100000 -o " + bad_out,  // more than the training split
        "quantize " + (dir / "nosuch").string() + " -o " + bad_out,
        "eval " + other + " --int8",                                        // never quantized
        "eval " + other + " --int8 --int8-file " + run + "/model.int8.pt",  // another model's file
        "eval " + run + " --int8 --fast",
        "infer -w " + run + " -i " + input + " -o " + logits + " --int8-file " + run + "/model.int8.pt"}) {
    const auto b = test::run_rla("--threads 1 " + bad);
    EXPECT_NE(b.exit_code, 0) << bad;
    EXPECT_EQ(std::count(b.output.begin(), b.output.end(), '\n'), 1) << bad << "\n" << b.output;
    EXPECT_FALSE(fs::exists(bad_out)) << bad;
    // The library names its field (calibration_images); the user reads the flag they typed.
    if (bad.find("--calib ") != std::string::npos) {
      EXPECT_NE(b.output.find("--calib "), std::string::npos) << b.output;
    }
    if (bad == "eval " + other + " --int8") {
      EXPECT_NE(b.output.find("rla quantize"), std::string::npos) << b.output;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
