// Damaged input must give an exception, never a crash, a hang or unbounded memory: truncate and
// mutate a valid archive and a valid pickle at many positions and check every outcome.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "rla/io/pytorch_archive.h"
#include "rla/io/state_dict.h"

namespace {

using rla::io::PyValue;

PyValue sample_checkpoint() {
  torch::manual_seed(5);
  auto base = torch::randn({3, 4});
  auto sd = PyValue::dict(/*ordered=*/true);
  sd.mutable_dict().set(PyValue::string("module.w"), PyValue::tensor(base));
  sd.mutable_dict().set(PyValue::string("module.v"), PyValue::tensor(base.slice(0, 1)));
  sd.mutable_dict().set(PyValue::string("module.n"), PyValue::tensor(torch::tensor(int64_t{9})));
  auto root = PyValue::dict();
  auto& d = root.mutable_dict();
  d.set(PyValue::string("epoch"), PyValue::integer(12));
  d.set(PyValue::string("arch"), PyValue::string("rla_resnet50"));
  d.set(PyValue::string("state_dict"), sd);
  d.set(PyValue::string("best"), PyValue::list({PyValue::floating(0.5), PyValue::tuple({PyValue()})}));
  return root;
}

// Outcome of one attempt: 0 read fine, 1 clean exception. Anything else fails the test run.
int attempt_archive(const std::string& bytes) {
  try {
    auto v = rla::io::read_pytorch_buffer(bytes.data(), bytes.size(), "mutant.pt");
    if (v.is_dict()) (void)v.to_dict().size();
    return 0;
  } catch (const std::exception& e) {
    EXPECT_GT(std::string(e.what()).size(), 10u);
    return 1;
  }
}

TEST(IoRobustness, TruncatedArchivesFailCleanly) {
  const std::string good = rla::io::write_pytorch_buffer(sample_checkpoint());
  ASSERT_EQ(attempt_archive(good), 0);
  int errors = 0;
  for (size_t len = 0; len < good.size(); len += std::max<size_t>(1, good.size() / 500)) {
    errors += attempt_archive(good.substr(0, len));
  }
  EXPECT_GT(errors, 400);  // a truncated zip loses its central directory: all must fail
}

TEST(IoRobustness, MutatedArchivesFailCleanlyOrLoad) {
  const std::string good = rla::io::write_pytorch_buffer(sample_checkpoint());
  std::mt19937 rng(1234);
  int ok = 0, errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string m = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t pos = rng() % m.size();
      m[pos] = static_cast<char>(rng() % 3 == 0 ? 0xFF : rng() % 256);
    }
    (attempt_archive(m) == 0 ? ok : errors)++;
  }
  std::printf("mutated archives: %d loaded, %d refused\n", ok, errors);
  EXPECT_EQ(ok + errors, 3000);
  EXPECT_GT(errors, 0);
}

// The pickle interpreter alone (inside an archive the zip CRC catches most mutations first).
TEST(IoRobustness, MutatedAndTruncatedPicklesFailCleanly) {
  std::vector<rla::io::StorageRecord> storages;
  const std::string good = rla::io::pickle(sample_checkpoint(), storages);
  std::map<std::string, at::Tensor> records;
  for (const auto& s : storages) {
    records[s.key] =
        torch::from_blob(const_cast<void*>(s.data), {static_cast<int64_t>(s.nbytes)}, torch::kByte).clone();
  }
  const rla::io::StorageLoader loader = [&records](const std::string& key, at::ScalarType dtype, int64_t,
                                                   const std::string&) {
    auto it = records.find(key);
    if (it == records.end()) throw std::runtime_error("no storage " + key);
    return PyValue::storage(it->second, dtype);
  };
  auto run = [&](const std::string& bytes) {
    try {
      rla::io::unpickle(bytes.data(), bytes.size(), loader);
      return 0;
    } catch (const std::exception&) {
      return 1;
    }
  };
  ASSERT_EQ(run(good), 0);
  for (size_t len = 0; len < good.size(); ++len) EXPECT_EQ(run(good.substr(0, len)), 1) << "length " << len;
  std::mt19937 rng(99);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string m = good;
    const size_t pos = rng() % m.size();
    m[pos] = static_cast<char>(rng() % 256);
    if (rng() % 2) m[(pos + 1) % m.size()] = static_cast<char>(rng() % 256);
    ok += run(m) == 0;
  }
  std::printf("mutated pickles: %d of 20000 still loaded\n", ok);
}

}  // namespace
