// Python <-> C++ checkpoint interop, with files made by Debian's python3-torch at test time
// (tests/parity/python/rla_interop.py): an official-style DDP checkpoint loads here and gives
// Python's logits; a state dict written here loads in Python with weights_only=True, strict.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "../support/test_util.h"
#include "rla/io/pytorch_archive.h"
#include "rla/io/state_dict.h"
#include "rla/models/backbone.h"
#include "rla/models/registry.h"
#include "rla/models/resnet.h"

namespace {

using rla::io::PyValue;
namespace fs = std::filesystem;

using rla::test::kPython;

bool python_has_torch() {
  return rla::test::python_has("torch");
}

int run_script(const std::string& args) {
  const std::string cmd =
      std::string(kPython) + " " + RLA_SOURCE_DIR + "/tests/parity/python/rla_interop.py " + args;
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string temp_dir() {
  auto dir = fs::path(testing::TempDir()) / ("rla_interop_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir.string();
}

// The script's model: official RLA_ResNet(RLA_Bottleneck, [2,1,1,1], num_classes=10,
// width_per_group=16), rla_channel 32.
std::shared_ptr<rla::models::ResNetImpl> test_model() {
  return std::make_shared<rla::models::ResNetImpl>(
      rla::models::ResNetOptions().layers({2, 1, 1, 1}).width_per_group(16).num_classes(10).rla_channels(32));
}

double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

TEST(ParityInterop, OfficialDdpCheckpointLoadsAndMatchesPythonLogits) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  const auto dir = temp_dir();
  ASSERT_EQ(run_script("make-checkpoint " + dir + "/ckpt.pt " + dir + "/io.pt"), 0);

  const auto ckpt = rla::io::read_pytorch_file(dir + "/ckpt.pt");
  const auto& top = ckpt.to_dict();
  EXPECT_EQ(top.find("epoch")->to_int(), 7);
  EXPECT_EQ(top.find("arch")->to_string(), "rla_resnet_test");
  EXPECT_FLOAT_EQ(top.find("best_acc1")->to_tensor().item<float>(), 71.25f);
  ASSERT_TRUE(top.find("state_dict")->to_dict().ordered());
  // SGD state: {'state': {0: {'momentum_buffer': T}, ...}, 'param_groups': [{'lr': 0.1, ...}]}
  const auto& opt = top.find("optimizer")->to_dict();
  const auto& state = opt.find("state")->to_dict();
  ASSERT_GT(state.size(), 0u);
  EXPECT_TRUE(state.find(PyValue::integer(0))->to_dict().find("momentum_buffer")->is_tensor());
  const auto& group = opt.find("param_groups")->items().at(0).to_dict();
  EXPECT_DOUBLE_EQ(group.find("lr")->to_double(), 0.1);
  EXPECT_EQ(group.find("params")->items().size(), state.size());

  const auto sd = rla::io::extract_state_dict(ckpt);  // strips "module."
  auto model = test_model();
  const auto report = rla::io::load_state_dict(*model, sd);
  EXPECT_EQ(report.loaded, sd.size());
  const auto io = rla::io::read_pytorch_file(dir + "/io.pt");
  torch::NoGradGuard no_grad;
  model->eval();
  const auto logits = model->forward(io.to_dict().find("input")->to_tensor());
  const double err = max_rel_diff(logits, io.to_dict().find("logits_eval")->to_tensor());
  std::printf("C++ vs Python logits on the official-style checkpoint: max relative difference %.3g\n", err);
  EXPECT_LT(err, 1e-4);
  fs::remove_all(dir);
}

TEST(ParityInterop, CppWrittenStateDictLoadsInPythonWeightsOnly) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  const auto dir = temp_dir();
  torch::manual_seed(11);
  auto model = test_model();
  {
    // Non-trivial BatchNorm statistics and affine parameters, so eval mode tests the buffers.
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : rla::models::state_dict(*model)) {
      if (name.find("running_var") != std::string::npos)
        t.uniform_(0.5, 1.5);
      else if (name.find("running_mean") != std::string::npos || name.find("bias") != std::string::npos)
        t.normal_(0, 0.1);
      else if (name.find("num_batches_tracked") != std::string::npos)
        t.fill_(5);
      else if (t.dim() == 1)
        t.normal_(1, 0.1);
    }
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 64, 64});
  const auto logits = model->forward(x);
  rla::io::save_module(dir + "/weights.pt", *model);
  auto io = PyValue::dict();
  io.mutable_dict().set(PyValue::string("input"), PyValue::tensor(x));
  io.mutable_dict().set(PyValue::string("logits"), PyValue::tensor(logits));
  rla::io::write_pytorch_file(dir + "/io.pt", io);
  EXPECT_EQ(run_script("check " + dir + "/weights.pt " + dir + "/io.pt"), 0);
  fs::remove_all(dir);
}

TEST(ParityInterop, EveryValueKindPythonSavesIsRead) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  const auto dir = temp_dir();
  ASSERT_EQ(run_script("make-zoo " + dir + "/zoo.pt"), 0);
  const auto v = rla::io::read_pytorch_file(dir + "/zoo.pt");
  const auto& d = v.to_dict();
  EXPECT_TRUE(d.ordered());
  const std::vector<std::pair<std::string, torch::ScalarType>> dtypes = {
      {"f32", torch::kFloat}, {"f64", torch::kDouble}, {"f16", torch::kHalf},  {"bf16", torch::kBFloat16},
      {"i64", torch::kLong},  {"i32", torch::kInt},    {"i16", torch::kShort}, {"i8", torch::kChar}};
  for (const auto& [name, dt] : dtypes) {
    const auto t = d.find(name)->to_tensor();
    EXPECT_EQ(t.scalar_type(), dt) << name;
    EXPECT_TRUE(torch::equal(t, (torch::arange(6) - 2).to(dt))) << name;
  }
  EXPECT_TRUE(torch::equal(d.find("u8")->to_tensor(), torch::arange(6).to(torch::kByte)));
  EXPECT_TRUE(torch::equal(d.find("bool")->to_tensor(), torch::arange(6).remainder(2).eq(0)));
  const auto base = d.find("base")->to_tensor();
  EXPECT_TRUE(torch::equal(base, torch::arange(24, torch::kFloat).reshape({4, 6})));
  const auto view = d.find("view")->to_tensor();
  EXPECT_TRUE(torch::equal(view, base.slice(0, 1).slice(1, 0, 6, 2)));
  EXPECT_EQ(view.storage().data(), base.storage().data());  // shared, as in Python
  EXPECT_EQ(d.find("transposed")->to_tensor().strides(), torch::IntArrayRef({1, 6}));
  EXPECT_EQ(d.find("scalar")->to_tensor().dim(), 0);
  EXPECT_EQ(d.find("empty")->to_tensor().sizes(), torch::IntArrayRef({0, 3}));
  EXPECT_TRUE(torch::equal(d.find("param")->to_tensor(), torch::ones({3})));
  const auto& list = d.find("list")->items();
  ASSERT_EQ(list.size(), 9u);
  EXPECT_EQ(list[2].to_int(), int64_t{1} << 40);
  EXPECT_EQ(list[3].to_int(), INT64_MIN);
  EXPECT_DOUBLE_EQ(list[4].to_double(), 1.5);
  EXPECT_TRUE(list[5].is_none());
  EXPECT_TRUE(list[6].to_bool());
  EXPECT_EQ(list[8].to_string(), "h\xc3\xa9llo");
  EXPECT_EQ(d.find("tuple")->items()[1].items()[1].to_int(), 3);
  const auto& nested = d.find("nested")->to_dict();
  EXPECT_EQ(nested.find(PyValue::integer(7))->to_string(), "seven");
  EXPECT_TRUE(nested.find("a")->to_dict().find("b")->items()[0].is_tensor());
  fs::remove_all(dir);
}

}  // namespace

namespace {

// rla_resnet50 / rla_resnet101 as a backbone: the stage outputs C2..C5 and the final state h of
// forward_features equal those of the official mmdetection backbone's forward (written out in
// rla_interop.py, `make-features`) on the same random weights, within 1e-5 relative; the
// prepared fast path's features within 1e-4.
void check_backbone(const std::string& model, const std::string& layers) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " cannot import torch";
  const auto dir = temp_dir();
  const auto weights = dir + "/" + model + ".features.pt", io_path = dir + "/" + model + ".features_io.pt";
  ASSERT_EQ(run_script("make-features " + weights + " " + io_path + " --layers " + layers), 0);
  auto net = rla::models::create_model(model);
  rla::io::load_state_dict(*net, rla::io::read_state_dict(weights));
  net->eval();
  const auto io = rla::io::read_pytorch_file(io_path);
  const auto& d = io.to_dict();
  const auto x = d.find("input")->to_tensor();
  torch::NoGradGuard no_grad;
  const auto options = rla::models::BackboneOptions().with_state(true);
  const auto features = rla::models::forward_features(*net, x, options);
  const std::vector<std::string> names{"C2", "C3", "C4", "C5", "h"};
  EXPECT_EQ(rla::models::feature_names(*net, {3, 96, 96}, options), names);
  ASSERT_EQ(features.size(), names.size());
  auto prepared = net->copy();
  prepared->prepare_inference({});
  const auto fast = rla::models::forward_features(*prepared, x, options);
  for (size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(model + " " + names[i]);
    const auto want = d.find(names[i])->to_tensor();
    ASSERT_EQ(features[i].sizes(), want.sizes());
    EXPECT_LE(max_rel_diff(features[i], want), 1e-5);
    EXPECT_LE(max_rel_diff(fast[i].contiguous(), want), 1e-4);
  }
  fs::remove_all(dir);
}

}  // namespace

TEST(ParityInterop, RlaResNet50BackboneMatchesTheOfficialStageOutputs) {
  check_backbone("rla_resnet50", "3,4,6,3");
}

TEST(ParityInterop, RlaResNet101BackboneMatchesTheOfficialStageOutputs) {
  check_backbone("rla_resnet101", "3,4,23,3");
}
