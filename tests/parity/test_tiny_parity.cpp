// Forward parity with the official PyTorch RLA_ResNet: rla_resnet_tiny.weights.pt (a plain dict
// state_dict, random weights and statistics) and rla_resnet_tiny.io.pt (input, logits_eval,
// logits_train), both written by python3-torch 1.13 from the authors' code (fixtures/README.md).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "../support/test_util.h"
#include "rla/models/resnet.h"

namespace {

c10::Dict<c10::IValue, c10::IValue> load_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(bytes.empty()) << path;
  return torch::pickle_load(bytes).toGenericDict();
}

std::shared_ptr<rla::models::ResNetImpl> tiny_model() {
  // Python: RLA_ResNet(RLA_Bottleneck, [1, 1, 1, 1], num_classes=10, width_per_group=16)
  return std::make_shared<rla::models::ResNetImpl>(rla::models::ResNetOptions()
                                                       .layers({1, 1, 1, 1})
                                                       .width_per_group(16)
                                                       .num_classes(10)
                                                       .rla_channels(32)
                                                       .zero_init_residual(true));
}

void load_weights(torch::nn::Module& net, const c10::Dict<c10::IValue, c10::IValue>& sd) {
  torch::NoGradGuard ng;
  auto entries = rla::models::state_dict(net);
  ASSERT_EQ(static_cast<size_t>(sd.size()), entries.size());
  for (auto& [name, tensor] : entries) {
    ASSERT_TRUE(sd.contains(name)) << name;
    auto src = sd.at(name).toTensor();
    ASSERT_EQ(src.sizes(), tensor.sizes()) << name;
    tensor.copy_(src);
  }
}

double max_rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

TEST(TinyParity, EvalAndTrainLogitsMatchOfficial) {
  auto weights = load_dict(rla::test::fixture("rla_resnet_tiny.weights.pt"));
  auto io = load_dict(rla::test::fixture("rla_resnet_tiny.io.pt"));
  auto net = tiny_model();
  EXPECT_EQ(rla::models::count_parameters(*net), 3700362);
  load_weights(*net, weights);
  auto input = io.at("input").toTensor();
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{2, 3, 64, 64}));

  net->eval();
  {
    torch::NoGradGuard ng;
    auto logits = net->forward(input);
    EXPECT_LT(max_rel_err(logits, io.at("logits_eval").toTensor()), 1e-4);
  }
  net->train();  // batch statistics, as model.train() in Python
  {
    torch::NoGradGuard ng;
    auto logits = net->forward(input);
    EXPECT_LT(max_rel_err(logits, io.at("logits_train").toTensor()), 1e-4);
  }
}

TEST(TinyParity, ChannelsLastGivesTheSameLogits) {
  auto weights = load_dict(rla::test::fixture("rla_resnet_tiny.weights.pt"));
  auto io = load_dict(rla::test::fixture("rla_resnet_tiny.io.pt"));
  auto net = tiny_model();
  load_weights(*net, weights);
  rla::models::to_channels_last(*net);
  net->eval();
  torch::NoGradGuard ng;
  auto input = io.at("input").toTensor().contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_LT(max_rel_err(net->forward(input), io.at("logits_eval").toTensor()), 1e-4);
}

}  // namespace
