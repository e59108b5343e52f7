// `rla convert`, `rla infer` and `rla predict` end to end: the built CLI against in-process
// results (same weights, same input) — the batch run must equal the library call.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "../support/test_util.h"
#include "rla/data/image_io.h"
#include "rla/io/model_io.h"
#include "rla/io/pytorch_archive.h"

namespace {

using rla::io::PyValue;
namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  const auto dir = fs::path(testing::TempDir()) / ("rla_io_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

TEST(IoCli, ConvertStripsPrefixAndKeepsOnlyTheStateDict) {
  auto sd = PyValue::dict(/*ordered=*/true);
  sd.mutable_dict().set(PyValue::string("module.conv1.weight"), PyValue::tensor(torch::ones({2, 2})));
  sd.mutable_dict().set(PyValue::string("module.fc.bias"), PyValue::tensor(torch::arange(3)));
  auto ckpt = PyValue::dict();
  ckpt.mutable_dict().set(PyValue::string("epoch"), PyValue::integer(90));
  ckpt.mutable_dict().set(PyValue::string("state_dict"), sd);
  ckpt.mutable_dict().set(PyValue::string("optimizer"), PyValue::dict());
  const auto in = temp_path("ckpt.pt"), out = temp_path("clean.pt");
  rla::io::write_pytorch_file(in, ckpt);
  const auto r = rla::test::run_rla("convert " + in + " " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 tensors, 7 values"), std::string::npos) << r.output;
  const auto v = rla::io::read_pytorch_file(out);
  ASSERT_TRUE(v.to_dict().ordered());
  ASSERT_EQ(v.to_dict().size(), 2u);
  EXPECT_EQ(v.to_dict().entries()[0].first.to_string(), "conv1.weight");
  EXPECT_TRUE(torch::equal(v.to_dict().find("fc.bias")->to_tensor(), torch::arange(3)));

  const auto bad = rla::test::run_rla("convert " + rla::test::fixture("README.md") + " " + out);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("not a PyTorch checkpoint"), std::string::npos) << bad.output;
}

TEST(IoCli, InferWritesTheSameLogitsAsTheLibrary) {
  torch::manual_seed(21);
  auto net = rla::models::create_model("rla_resnet20");
  const auto weights = temp_path("rla_resnet20.pt"), input = temp_path("x.pt"), output = temp_path("y.pt");
  rla::io::save_module(weights, *net);
  const auto x = torch::randn({3, 3, 32, 32});
  auto io = PyValue::dict();
  io.mutable_dict().set(PyValue::string("input"), PyValue::tensor(x));
  rla::io::write_pytorch_file(input, io);
  torch::NoGradGuard no_grad;
  for (bool train : {false, true}) {
    const auto r =
        rla::test::run_rla("--threads 1 infer --model rla_resnet20 --weights " + weights + " --input " +
                           input + " --output " + output + (train ? " --train-mode" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    net->train(train);
    const auto ref = net->forward(x);
    const auto got = rla::io::read_tensor_file(output);
    ASSERT_EQ(got.sizes(), ref.sizes());
    EXPECT_TRUE(torch::allclose(got, ref, 1e-5, 1e-6)) << (train ? "train" : "eval");
  }
  const auto wrong = rla::test::run_rla("infer --model rla_resnet32 --weights " + weights + " --input " +
                                        input + " --output " + output);
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("missing (84): stages.0.3.conv1.weight"), std::string::npos) << wrong.output;
}

TEST(IoCli, PredictPrintsTopFiveWithLabels) {
  torch::manual_seed(8);
  auto net = rla::models::create_model("rla_resnet20");
  const auto weights = temp_path("predict_w.pt"), image = temp_path("img.png"),
             labels = temp_path("labels.txt");
  rla::io::save_module(weights, *net);
  rla::data::write_png(image, torch::randint(0, 256, {3, 40, 48}, torch::kByte));
  {
    std::ofstream f(labels);
    for (int i = 0; i < 10; ++i) f << "class_" << i << "\n";
  }
  const auto r = rla::test::run_rla("predict --model rla_resnet20 --weights " + weights + " --labels " +
                                    labels + " " + image);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  net->eval();
  torch::NoGradGuard no_grad;
  const auto& entry = rla::models::find_model("rla_resnet20");
  const auto logits = net->forward(rla::io::load_image_input(image, rla::io::image_input_for(entry)))[0];
  const auto top = rla::io::top_k(logits, 5, rla::io::read_labels(labels));
  ASSERT_EQ(top.size(), 5u);
  EXPECT_NE(r.output.find(top[0].label), std::string::npos) << r.output;
  size_t lines = 0;
  for (char c : r.output) lines += c == '%';
  EXPECT_EQ(lines, 5u) << r.output;
}

}  // namespace

// Bad numbers and bounds get one line naming the option and the value (CLI11's own positive-number
// check printed its range up to the largest double, digit by digit).
TEST(IoCli, BadNumbersGetOneShortLine) {
  for (const auto& [args, words] : std::vector<std::pair<std::string, std::string>>{
           {"summary -m resnet20 --rla-channels 0", "--rla-channels: must be positive, got 0"},
           {"report . --margin -1", "--margin: must be positive, got -1"},
           {"--threads 100000 list", "--threads: Value 100000 not in range 0 to 1024"}}) {
    const auto r = rla::test::run_rla(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << ": " << r.output;
    EXPECT_LT(r.output.size(), 200u) << args << ": " << r.output;
  }
  // A comparison naming no row: the message alone, not the table first.
  const auto run = fs::path(temp_path("report")) / "resnet20-seed0";
  fs::create_directories(run);
  fs::copy_file(rla::test::fixture("config.table-resnet20-seed0.json"), run / "config.json",
                fs::copy_options::overwrite_existing);
  const auto r = rla::test::run_rla("report " + run.parent_path().string() + " --compare resnet20:nosuch");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no row 'nosuch'"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("resnet20 |"), std::string::npos) << r.output;
  EXPECT_LT(r.output.size(), 200u) << r.output;
}
