#include "rla/engine/metrics.h"

namespace rla::engine {

ClassificationMeter::ClassificationMeter(int64_t k) : k_(k), confusion_(static_cast<size_t>(k * k), 0) {}

void ClassificationMeter::reset() {
  count_ = 0;
  loss_sum_ = top1_ = top5_ = 0;
  std::fill(confusion_.begin(), confusion_.end(), 0);
  predictions_.clear();
}

void ClassificationMeter::update(const torch::Tensor& logits, const torch::Tensor& labels, double loss) {
  const int64_t n = logits.size(0);
  const int64_t kk = std::min<int64_t>(5, logits.size(1));
  auto top = std::get<1>(logits.detach().topk(kk, 1)).to(torch::kCPU).contiguous();
  auto lab = labels.to(torch::kCPU).contiguous();
  const auto* t = top.data_ptr<int64_t>();
  const auto* l = lab.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pred = t[i * kk];
    if (pred == l[i]) ++top1_;
    for (int64_t j = 0; j < kk; ++j)
      if (t[i * kk + j] == l[i]) {
        ++top5_;
        break;
      }
    if (l[i] >= 0 && l[i] < k_) ++confusion_[static_cast<size_t>(l[i] * k_ + pred)];
    if (keep_predictions_) predictions_.push_back(pred);
  }
  loss_sum_ += loss * static_cast<double>(n);
  count_ += n;
}

void ClassificationMeter::merge(const ClassificationMeter& o) {
  TORCH_CHECK(o.k_ == k_, "cannot merge meters of ", o.k_, " and ", k_, " classes");
  count_ += o.count_;
  loss_sum_ += o.loss_sum_;
  top1_ += o.top1_;
  top5_ += o.top5_;
  for (size_t i = 0; i < confusion_.size(); ++i) confusion_[i] += o.confusion_[i];
}

std::vector<double> ClassificationMeter::per_class_accuracy() const {
  std::vector<double> acc(static_cast<size_t>(k_), 0.0);
  for (int64_t c = 0; c < k_; ++c) {
    int64_t total = 0;
    for (int64_t p = 0; p < k_; ++p) total += confusion_[static_cast<size_t>(c * k_ + p)];
    acc[static_cast<size_t>(c)] = total ? 100.0 * confusion_[static_cast<size_t>(c * k_ + c)] / total : 0.0;
  }
  return acc;
}

torch::Tensor ClassificationMeter::to_tensor() const {
  auto t = torch::empty({4 + k_ * k_}, torch::kDouble);
  auto* p = t.data_ptr<double>();
  p[0] = static_cast<double>(count_);
  p[1] = loss_sum_;
  p[2] = top1_;
  p[3] = top5_;
  for (size_t i = 0; i < confusion_.size(); ++i) p[4 + i] = static_cast<double>(confusion_[i]);
  return t;
}

void ClassificationMeter::from_tensor(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kDouble).contiguous();
  TORCH_CHECK(c.numel() == 4 + k_ * k_, "meter tensor has ", c.numel(), " values, expected ", 4 + k_ * k_);
  const auto* p = c.data_ptr<double>();
  count_ = static_cast<int64_t>(std::llround(p[0]));
  loss_sum_ = p[1];
  top1_ = p[2];
  top5_ = p[3];
  for (size_t i = 0; i < confusion_.size(); ++i) confusion_[i] = static_cast<int64_t>(std::llround(p[4 + i]));
}

nlohmann::json to_json(const ClassificationMeter& m, const std::vector<std::string>& names) {
  nlohmann::json per_class = nlohmann::json::array();
  const auto acc = m.per_class_accuracy();
  for (size_t c = 0; c < acc.size(); ++c)
    per_class.push_back({{"class", c < names.size() ? names[c] : std::to_string(c)}, {"top1", acc[c]}});
  nlohmann::json confusion = nlohmann::json::array();
  const int64_t k = m.num_classes();
  for (int64_t r = 0; r < k; ++r)
    confusion.push_back(
        std::vector<int64_t>(m.confusion().begin() + r * k, m.confusion().begin() + (r + 1) * k));
  return {{"samples", m.count()}, {"loss", m.loss()},       {"top1", m.top1()},
          {"top5", m.top5()},     {"per_class", per_class}, {"confusion", confusion}};
}

}  // namespace rla::engine
