#pragma once
// Evaluation of a classifier on a loader: loss, top-1 / top-5 and, on request, every example's
// predicted class. Used by the training loop after every epoch and by every evaluating command.
#include <functional>

#include "rla/data/loader.h"
#include "rla/engine/metrics.h"
#include "rla/models/network.h"

namespace rla::engine {

/// Evaluates `net` on every batch of `loader` (eval mode, no grad). `keep_predictions`: the
/// meter also keeps every example's top-1 class (ClassificationMeter::predictions()).
ClassificationMeter evaluate(models::NetworkImpl& net, data::DataLoader& loader, int64_t num_classes,
                             bool show_progress = false, bool keep_predictions = false);
/// The same with any forward (images [N, C, H, W] -> logits [N, classes]), e.g. the fast
/// inference path of inference/fast_inference.h. Runs under NoGradGuard.
ClassificationMeter evaluate(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                             data::DataLoader& loader, int64_t num_classes, bool show_progress = false,
                             bool keep_predictions = false);

}  // namespace rla::engine
