#pragma once
// Running classification metrics: loss, top-1 / top-5, per-class accuracy, confusion matrix.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <vector>

namespace rla::engine {

class ClassificationMeter {
 public:
  explicit ClassificationMeter(int64_t num_classes);
  /// logits [N, K], labels int64 [N], loss: the batch's mean loss.
  void update(const torch::Tensor& logits, const torch::Tensor& labels, double loss);
  /// Adds another meter's counts (e.g. from another rank).
  void merge(const ClassificationMeter& other);
  void reset();
  /// Also keep every example's top-1 class, in update order (predictions()).
  void keep_predictions(bool keep = true) { keep_predictions_ = keep; }
  const std::vector<int64_t>& predictions() const { return predictions_; }

  int64_t count() const { return count_; }
  double loss() const { return count_ ? loss_sum_ / count_ : 0.0; }
  double top1() const { return count_ ? 100.0 * top1_ / count_ : 0.0; }  ///< percent
  double top5() const { return count_ ? 100.0 * top5_ / count_ : 0.0; }
  std::vector<double> per_class_accuracy() const;                       ///< percent, per true class
  const std::vector<int64_t>& confusion() const { return confusion_; }  ///< [true * K + predicted]
  int64_t num_classes() const { return k_; }

  /// Flat float64 vector of all sums (for all-reduce) and back.
  torch::Tensor to_tensor() const;
  void from_tensor(const torch::Tensor& t);

 private:
  int64_t k_;
  int64_t count_ = 0;
  double loss_sum_ = 0, top1_ = 0, top5_ = 0;
  std::vector<int64_t> confusion_;
  bool keep_predictions_ = false;
  std::vector<int64_t> predictions_;
};

nlohmann::json to_json(const ClassificationMeter& m, const std::vector<std::string>& class_names);

}  // namespace rla::engine
