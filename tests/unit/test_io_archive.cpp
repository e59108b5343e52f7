// The checkpoint reader/writer without Python: the official tiny fixture through our own reader,
// strict/non-strict loading, write -> read round trips, and files that must be refused.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "../support/test_util.h"
#include "rla/io/pytorch_archive.h"
#include "rla/io/state_dict.h"
#include "rla/models/resnet.h"

namespace {

using rla::io::PyValue;

std::shared_ptr<rla::models::ResNetImpl> tiny_model(int64_t classes = 10) {
  return std::make_shared<rla::models::ResNetImpl>(rla::models::ResNetOptions()
                                                       .layers({1, 1, 1, 1})
                                                       .width_per_group(16)
                                                       .num_classes(classes)
                                                       .rla_channels(32)
                                                       .zero_init_residual(true));
}

double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

// An archive whose data.pkl is `pickle` (written with LibTorch's writer, as torch.save would).
std::string archive_with_pickle(const std::string& pickle) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter w([&out](const void* p, size_t n) {
    out.append(static_cast<const char*>(p), n);
    return n;
  });
  w.writeRecord("data.pkl", pickle.data(), pickle.size());
  w.writeEndOfFile();
  return out;
}

std::string read_error(const std::string& bytes) {
  try {
    rla::io::read_pytorch_buffer(bytes.data(), bytes.size(), "test.pt");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(IoArchive, TinyFixtureThroughOwnReaderReproducesLogits) {
  // Golden: official RLA_ResNet(RLA_Bottleneck, [1,1,1,1], num_classes=10, width_per_group=16),
  // torch.save(dict(model.state_dict())) and model(input) in eval and train mode (fixtures/README).
  const auto start = std::chrono::steady_clock::now();
  auto sd = rla::io::read_state_dict(rla::test::fixture("rla_resnet_tiny.weights.pt"));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("read rla_resnet_tiny.weights.pt (%zu tensors) in %.1f ms\n", sd.size(), ms);
  ASSERT_EQ(sd.size(), 137u);
  auto model = tiny_model();
  auto report = rla::io::load_state_dict(*model, sd);
  EXPECT_EQ(report.loaded, 137u);
  EXPECT_TRUE(report.ok()) << report.summary();

  auto io = rla::io::read_pytorch_file(rla::test::fixture("rla_resnet_tiny.io.pt"));
  const auto& d = io.to_dict();
  const auto input = d.find("input")->to_tensor();
  ASSERT_EQ(input.sizes(), torch::IntArrayRef({2, 3, 64, 64}));
  torch::NoGradGuard no_grad;
  model->eval();
  EXPECT_LT(max_rel_diff(model->forward(input), d.find("logits_eval")->to_tensor()), 1e-4);
  model->train();
  EXPECT_LT(max_rel_diff(model->forward(input), d.find("logits_train")->to_tensor()), 1e-4);
}

TEST(IoArchive, StrictLoadListsMissingUnexpectedAndMismatched) {
  auto sd = rla::io::read_state_dict(rla::test::fixture("rla_resnet_tiny.weights.pt"));
  sd.erase(sd.begin());  // conv1.weight
  sd.emplace_back("extra.weight", torch::zeros({1}));
  auto model = tiny_model(/*classes=*/5);
  const auto before = model->named_parameters()["bn1.weight"].clone();
  try {
    rla::io::load_state_dict(*model, sd);
    FAIL() << "strict load of a mismatching state dict succeeded";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing (1): conv1.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected (1): extra.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fc.weight: file [10, 2080] vs model [5, 2080]"), std::string::npos) << msg;
  }
  // Strict failure copies nothing.
  EXPECT_TRUE(torch::equal(before, model->named_parameters()["bn1.weight"]));

  auto report = rla::io::load_state_dict(*model, sd, rla::io::LoadOptions{/*strict=*/false});
  EXPECT_EQ(report.mismatched.size(), 2u);  // fc.weight, fc.bias
  EXPECT_EQ(report.missing, std::vector<std::string>{"conv1.weight"});
  EXPECT_EQ(report.loaded, 137u - 3u);
  EXPECT_FALSE(torch::equal(before, model->named_parameters()["bn1.weight"]));
}

TEST(IoArchive, WriteReadRoundTripKeepsValuesViewsAndSharing) {
  torch::manual_seed(3);
  auto base = torch::randn({4, 6});
  auto root = PyValue::dict(/*ordered=*/true);
  auto& d = root.mutable_dict();
  d.set(PyValue::string("base"), PyValue::tensor(base));
  d.set(PyValue::string("view"), PyValue::tensor(base.slice(0, 1).slice(1, 0, 6, 2)));
  for (auto dt : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16, torch::kLong, torch::kInt,
                  torch::kShort, torch::kChar, torch::kByte, torch::kBool})
    d.set(PyValue::string(c10::toString(dt)), PyValue::tensor(torch::arange(7).to(dt)));
  d.set(PyValue::string("ints"),
        PyValue::list({PyValue::integer(0), PyValue::integer(255), PyValue::integer(65536),
                       PyValue::integer(-1), PyValue::integer(INT64_MIN), PyValue::integer(INT64_MAX)}));
  d.set(PyValue::string("meta"),
        PyValue::tuple({PyValue::floating(-2.5), PyValue::string("x"), PyValue(), PyValue::boolean(true)}));
  d.set(PyValue::integer(7), PyValue::dict());
  const std::string bytes = rla::io::write_pytorch_buffer(root);
  const auto back = rla::io::read_pytorch_buffer(bytes.data(), bytes.size());
  const auto& b = back.to_dict();
  ASSERT_TRUE(b.ordered());
  ASSERT_EQ(b.size(), d.size());
  EXPECT_TRUE(torch::equal(b.find("base")->to_tensor(), base));
  const auto view = b.find("view")->to_tensor();
  EXPECT_TRUE(torch::equal(view, base.slice(0, 1).slice(1, 0, 6, 2)));
  EXPECT_EQ(view.storage_offset(), 6);
  EXPECT_EQ(view.storage().data(), b.find("base")->to_tensor().storage().data());  // still one storage
  for (auto dt : {torch::kFloat, torch::kHalf, torch::kBFloat16, torch::kByte, torch::kBool}) {
    const auto t = b.find(c10::toString(dt))->to_tensor();
    EXPECT_EQ(t.scalar_type(), dt);
    EXPECT_TRUE(torch::equal(t, torch::arange(7).to(dt)));
  }
  const auto& ints = b.find("ints")->items();
  EXPECT_EQ(ints[2].to_int(), 65536);
  EXPECT_EQ(ints[3].to_int(), -1);
  EXPECT_EQ(ints[4].to_int(), INT64_MIN);
  EXPECT_EQ(ints[5].to_int(), INT64_MAX);
  EXPECT_EQ(b.find("meta")->items()[0].to_double(), -2.5);
  EXPECT_TRUE(b.find(PyValue::integer(7))->is_dict());
}

TEST(IoArchive, SaveModuleIsAtomicAndExact) {
  auto model = tiny_model();
  const std::string path = testing::TempDir() + "rla_io_save_module.pt";
  rla::io::save_module(path, *model);
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
  const auto sd = rla::io::read_state_dict(path);
  const auto ref = rla::models::state_dict(*model);
  ASSERT_EQ(sd.size(), ref.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    EXPECT_EQ(sd[i].first, ref[i].first);
    EXPECT_TRUE(torch::equal(sd[i].second, ref[i].second)) << sd[i].first;
  }
  std::remove(path.c_str());
}

TEST(IoArchive, RefusesCodeLegacyAndTorchScriptWithReasons) {
  // os.system('ls'): GLOBAL os system, ('ls',), REDUCE.
  EXPECT_NE(read_error(archive_with_pickle(std::string("\x80\x02"
                                                       "cos\nsystem\nX\x02\x00\x00\x00ls\x85R.",
                                                       23)))
                .find("'os.system'"),
            std::string::npos);
  EXPECT_NE(read_error(archive_with_pickle("\x80\x02"
                                           "cbuiltins\neval\n)R."))
                .find("builtins.eval"),
            std::string::npos);
  // Protocol-4 STACK_GLOBAL of an arbitrary class.
  EXPECT_NE(read_error(archive_with_pickle("\x80\x04\x8c\x08"
                                           "argparse\x8c\tNamespace\x93)R."))
                .find("argparse.Namespace"),
            std::string::npos);
  // NEWOBJ on a whitelisted name is still refused: it would construct an object.
  EXPECT_NE(read_error(archive_with_pickle("\x80\x02"
                                           "ccollections\nOrderedDict\n)\x81."))
                .find("refused"),
            std::string::npos);
  // A list that contains itself.
  EXPECT_NE(read_error(archive_with_pickle(std::string("\x80\x02]q\x00h\x00"
                                                       "a.",
                                                       9)))
                .find("cycle"),
            std::string::npos);
  // Pre-1.6 format: the pickled magic number first.
  const std::string legacy("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02}.");
  EXPECT_NE(read_error(legacy).find("_use_new_zipfile_serialization=True"), std::string::npos)
      << read_error(legacy);
  EXPECT_NE(read_error("GIF89a....").find("not a PyTorch checkpoint"), std::string::npos);
}

TEST(IoArchive, DeepNestingIsRefusedNotRecursedInto) {
  std::string p = "\x80\x02";
  for (int i = 0; i < 5000; ++i) p += ']';
  for (int i = 0; i < 4999; ++i) p += 'a';
  p += '.';
  EXPECT_NE(read_error(archive_with_pickle(p)).find("nested deeper"), std::string::npos);
}

TEST(IoArchive, CheckpointKeyAndPrefixOptions) {
  auto sd = PyValue::dict(true);
  sd.mutable_dict().set(PyValue::string("module.fc.bias"), PyValue::tensor(torch::ones({2})));
  auto ckpt = PyValue::dict();
  ckpt.mutable_dict().set(PyValue::string("epoch"), PyValue::integer(3));
  ckpt.mutable_dict().set(PyValue::string("state_dict"), sd);
  auto out = rla::io::extract_state_dict(ckpt);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first, "fc.bias");
  out = rla::io::extract_state_dict(ckpt, {"state_dict", ""});
  EXPECT_EQ(out[0].first, "module.fc.bias");
  EXPECT_THROW(rla::io::extract_state_dict(ckpt, {"ema", "module."}), std::runtime_error);
}

}  // namespace
