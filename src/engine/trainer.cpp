#include "rla/engine/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "rla/data/augment.h"
#include "rla/engine/checkpoint.h"
#include "rla/engine/optim.h"
#include "rla/engine/progress.h"
#include "rla/engine/run_folder.h"
#include "rla/io/state_dict.h"
#include "rla/models/exit_heads.h"
#include "rla/plot/plot.h"
#include "rla/util/field_error.h"
#include "rla/util/file.h"
#include "rla/util/threads.h"

namespace rla::engine {
namespace {

namespace fs = std::filesystem;

// The batch's tensors on `device` (the loader makes them on the CPU).
data::Batch on_device(const data::Batch& batch, const torch::Device& device) {
  if (device.is_cpu()) return batch;
  data::Batch b = batch;
  b.images = batch.images.to(device, /*non_blocking=*/true);
  b.labels = batch.labels.to(device, /*non_blocking=*/true);
  return b;
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

// Everything one run holds while it trains.
struct Run {
  TrainConfig c;
  const TrainHooks& hooks;
  bool lead = true;  // rank 0: writes files and logs
  data::DataBundle data;
  data::DatasetPtr held_out;  // evaluated after every epoch: validation split, else test set
  std::string held_out_name;
  models::Network net;
  models::ExitHeads heads{nullptr};
  std::vector<torch::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<WeightAverage> average;  // EMA of the weights (TrainConfig::regularization.ema_decay)
  TrainState state;
  TrainResult result;
  int64_t steps = 0;
  torch::Device device = torch::kCPU;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point probe_started;  // time budget: the timed steps' start
  std::optional<RunFolderLock> folder_lock;             // rank 0 writes the run folder

  Run(const TrainConfig& config, const TrainHooks& h) : c(config), hooks(h) {}
  bool stop_now() const { return stop_requested() || (c.run.max_steps > 0 && steps >= c.run.max_steps); }
  torch::nn::Module* extra() { return heads ? heads.get() : nullptr; }
  torch::nn::Module* averaged() { return average ? &average->model() : nullptr; }
  bool mixing() const { return c.regularization.mixing(); }
  bool fitted() const { return state.fitted_epochs > 0; }
  /// Epochs the run goes through: the configured epochs, or the fitted length rounded up (a
  /// partial last one).
  int64_t planned_epochs() const {
    return fitted() ? static_cast<int64_t>(std::ceil(state.fitted_epochs - 1e-9)) : c.run.epochs;
  }
  /// Optimiser steps of the whole schedule, for `nb` batches per epoch.
  int64_t planned_steps(size_t nb) const {
    const auto per_epoch = static_cast<double>(nb);
    return fitted() ? std::llround(state.fitted_epochs * per_epoch) : c.run.epochs * static_cast<int64_t>(nb);
  }
  /// Batches of epoch `epoch` the schedule takes (fewer than `nb` in a fitted partial last one).
  int64_t batches_in_epoch(int64_t epoch, size_t nb) const {
    const auto per_epoch = static_cast<int64_t>(nb);
    return std::min(planned_steps(nb) - epoch * per_epoch, per_epoch);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Rejects contradictory options before any work starts and fills in what follows from the others.
void prepare_config(TrainConfig& c, int world_size) {
  validate_train_config(c);
  if (c.run.time_budget_minutes > 0 && world_size > 1)
    throw util::FieldError(
        "time_budget_minutes",
        "time_budget_minutes works on one process only (each rank would fit its own schedule)");
  c.schedule.epochs = static_cast<double>(c.run.epochs);
  c.data.seed = c.run.seed;
  if (c.run.out_dir.empty()) c.run.out_dir = fmt::format("runs/{}-{}", c.model, c.data.dataset);
}

// Rank 0 locks the run folder and checks what it holds (engine/run_folder.h) before anything is
// loaded; every rank learns whether that worked, so that none waits for a rank 0 that gave up.
void claim_folder(Run& r) {
  std::exception_ptr failed;
  try {
    if (r.lead) {
      r.folder_lock.emplace(claim_run_folder(r.c.run.out_dir, r.c.run.resume, r.c.run.overwrite));
    } else {
      fs::create_directories(r.c.run.out_dir);
    }
  } catch (...) {
    failed = std::current_exception();
  }
  const bool all_ok = r.hooks.all_ranks_ok ? r.hooks.all_ranks_ok(!failed) : !failed;
  if (failed) std::rethrow_exception(failed);
  if (!all_ok)
    throw std::runtime_error(
        fmt::format("rank {}: another rank could not start the run in {} (its output says why)", r.hooks.rank,
                    r.c.run.out_dir));
}

// Data, model (its configuration resolved once and recorded), exit heads, optimiser.
void build(Run& r) {
  auto& c = r.c;
  r.data = data::open_data(c.data);
  r.held_out = r.data.val ? r.data.val : r.data.test;
  r.held_out_name = r.data.val ? "validation" : "test";
  torch::manual_seed(c.run.seed);
  c.model_config.num_classes = r.data.train->num_classes();
  c.model_config.in_channels = r.data.input_shape[0];
  const auto& entry = models::find_model(c.model);
  c.model_config = models::resolve_config(entry, c.model_config);
  c.input_shape = r.data.input_shape;
  c.input_mean = r.data.normalization.mean;
  c.input_std = r.data.normalization.std;
  c.class_names = r.data.train->class_names();
  auto resolved = c.model_config;
  resolved.channels_last = c.run.channels_last;
  r.net = entry.build(resolved);
  if (!c.run.init_checkpoint.empty()) load_checkpoint(c.run.init_checkpoint, *r.net, nullptr);
  if (c.exits.enabled()) {
    r.heads = models::ExitHeads(*r.net, r.data.train->num_classes(), *c.exits.placement, c.exits.input,
                                c.exits.projection);
    if (c.run.channels_last) models::to_channels_last(*r.heads);
  }
  r.device = parse_device(c.run.device);
  r.net->to(r.device);
  if (r.heads) r.heads->to(r.device);
  ParameterGroups groups;
  if (c.exits.freeze_backbone) {
    for (auto& p : r.net->parameters()) p.set_requires_grad(false);
  } else {
    groups = split_for_weight_decay(*r.net);
  }
  if (r.heads) append_groups(groups, split_for_weight_decay(*r.heads));
  r.params = groups.all;
  TORCH_CHECK(!r.params.empty(), "nothing to train: the model is frozen and there are no exit heads");
  r.optimizer = make_optimizer(c.optimizer, groups, c.schedule.base_lr);
  if (c.regularization.ema_decay > 0)
    r.average = std::make_unique<WeightAverage>(*r.net, ema_update_decay(c, r.hooks.world_size),
                                                c.regularization.ema_steps);
}

// Resumes from last.ckpt and metrics.jsonl, or starts the run folder afresh.
void restore_or_start(Run& r, const std::string& config_json) {
  const auto& c = r.c;
  r.result.run_dir = c.run.out_dir;
  r.state.config_json = config_json;
  const auto metrics_file = metrics_path(c.run.out_dir);
  if (c.run.resume && fs::exists(last_checkpoint_path(c.run.out_dir))) {
    r.state = load_checkpoint(last_checkpoint_path(c.run.out_dir), *r.net, r.optimizer.get(), r.extra(),
                              r.averaged());
    r.state.config_json = config_json;
    if (r.fitted()) r.c.schedule.epochs = r.state.fitted_epochs;
    // Drop lines of epochs after the checkpoint (a crash between the two writes).
    for (const auto& m : read_metrics(c.run.out_dir))
      if (m.epoch <= r.state.epochs_done) r.result.history.push_back(m);
    std::string kept;
    for (const auto& m : r.result.history) kept += to_json(m).dump() + "\n";
    if (r.lead) util::write_file_atomic(metrics_file, kept);
    if (!c.run.quiet)
      fmt::print(stderr, "resuming {} after epoch {}{}\n", c.run.out_dir, r.state.epochs_done,
                 r.state.next_batch ? fmt::format(" + {} batches", r.state.next_batch) : "");
  } else if (r.lead) {
    if (c.run.overwrite) remove_run_files(c.run.out_dir);  // the old run's, now that this one is built
    util::write_file_atomic(metrics_file, "");
    fs::remove(result_path(c.run.out_dir));
  }
}

// The model in training mode, except what the configuration keeps fixed.
void set_train_mode(Run& r) {
  r.net->train(!r.c.exits.freeze_backbone);
  if (r.c.run.freeze_bn) {
    for (auto& m : r.net->modules())
      if (auto* bn = m->as<models::BatchNorm2dImpl>()) bn->eval();
  }
  if (r.heads) r.heads->train();
}

std::pair<torch::Tensor, torch::Tensor> forward_loss(Run& r, const data::Batch& batch, int64_t epoch,
                                                     size_t b) {
  if (r.mixing()) {
    // One generator per (seed, epoch, batch, rank): a resumed run mixes its batches as an
    // uninterrupted one does.
    data::Rng rng(r.c.run.seed * 0x9E3779B97F4A7C15ULL ^ (static_cast<uint64_t>(epoch) << 40) ^
                  (static_cast<uint64_t>(b) << 8) ^ static_cast<uint64_t>(r.hooks.rank));
    const auto mixed = data::mix_batch(batch.images, batch.labels,
                                       data::BatchMixOptions()
                                           .num_classes(r.data.train->num_classes())
                                           .mixup_alpha(r.c.regularization.mixup_alpha)
                                           .cutmix_alpha(r.c.regularization.cutmix_alpha)
                                           .prob(r.c.regularization.mix_prob)
                                           .switch_prob(r.c.regularization.mix_switch_prob),
                                       rng);
    auto logits = r.net->forward(mixed.images);
    return {logits,
            data::soft_target_cross_entropy(logits, mixed.targets, r.c.regularization.label_smoothing)};
  }
  if (r.heads)
    return models::exit_loss(*r.net, *r.heads, batch.images, batch.labels,
                             r.c.exits.freeze_backbone ? -1.0 : r.c.exits.weight);
  auto logits = r.net->forward(batch.images);
  auto loss = torch::nn::functional::cross_entropy(
      logits, batch.labels,
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(r.c.regularization.label_smoothing));
  return {logits, loss};
}

// A time budget: steps 6-25 of the process are timed, one eval-mode forward of the batch at hand
// gives the held-out evaluation's cost per image, and the schedule becomes the longest one (in
// whole steps, at most the configured epochs) whose remaining steps and evaluations fit in what is left of
// the budget, less a 5 % margin. `done`: steps already taken in the whole run. Once fitted (also after a
// resume, from the checkpoint) the length never changes.
void fit_to_budget(Run& r, int64_t done, size_t nb, const torch::Tensor& images) {
  constexpr int64_t kSkip = 5, kTimed = 20;
  if (r.steps == kSkip) r.probe_started = std::chrono::steady_clock::now();
  if (r.steps < kSkip + kTimed) return;
  const double step_seconds = seconds_since(r.probe_started) / static_cast<double>(kTimed);
  double eval_seconds = 0;  // per image
  {
    torch::NoGradGuard no_grad;
    r.net->eval();
    r.net->forward(images);  // the first eval-mode call may build kernels for this shape
    const auto t = std::chrono::steady_clock::now();
    r.net->forward(images).sum().item<double>();  // waits for a GPU too
    eval_seconds = seconds_since(t) / static_cast<double>(images.size(0));
    set_train_mode(r);
  }
  const double left = 0.95 * r.c.run.time_budget_minutes * 60.0 - seconds_since(r.started);
  const auto held_out = static_cast<double>(r.held_out->size());
  const double final_test = r.data.val ? static_cast<double>(r.data.test->size()) : 0.0;
  const auto per_epoch = static_cast<int64_t>(nb);
  auto cost = [&](int64_t total) {  // seconds from now to the end of a `total`-step schedule
    const int64_t evals = (total + per_epoch - 1) / per_epoch - r.state.epochs_done;
    return static_cast<double>(total - done) * step_seconds +
           (static_cast<double>(evals) * held_out + final_test) * eval_seconds;
  };
  int64_t lo = done + 1, hi = r.c.run.epochs * per_epoch;  // the longest total with cost <= left
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (cost(mid) <= left) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  r.state.fitted_epochs = static_cast<double>(lo) / static_cast<double>(per_epoch);
  r.c.schedule.epochs = r.state.fitted_epochs;
  if (!r.c.run.quiet)
    fmt::print(stderr,
               "\ntime budget {:g} min: {:.1f} ms per step, {:.2f} ms per evaluated image -> schedule of "
               "{:.2f} epochs ({} steps; at most {} epochs){}\n",
               r.c.run.time_budget_minutes, 1e3 * step_seconds, 1e3 * eval_seconds, r.state.fitted_epochs, lo,
               r.c.run.epochs, cost(lo) > left ? " — the budget is too small even for that" : "");
}

// One epoch of optimiser steps from the checkpointed position. Returns false when stopped (Ctrl-C
// or max_steps) inside the epoch, after writing a resumable checkpoint.
bool train_epoch(Run& r, int64_t epoch, data::DataLoader& loader, ClassificationMeter& meter,
                 Progress& progress, double& lr) {
  const auto& c = r.c;
  const size_t nb = loader.batches_per_epoch();
  const auto first = r.state.next_batch;
  size_t b = static_cast<size_t>(first);
  while (auto loaded = loader.next()) {
    const auto batch = on_device(*loaded, r.device);
    lr = lr_at(c.schedule, static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(nb));
    set_learning_rate(*r.optimizer, lr);
    auto [logits, loss] = forward_loss(r, batch, epoch, b);
    const double loss_value = loss.item<double>();
    if (!std::isfinite(loss_value)) {
      throw NonFiniteLoss(
          fmt::format("loss became {} at epoch {} batch {} (lr {:.4g}); stopping — the last good "
                      "checkpoint {} is kept (try a lower learning rate)",
                      loss_value, epoch + 1, b + 1, lr, last_checkpoint_path(c.run.out_dir)));
    }
    r.optimizer->zero_grad();
    loss.backward();
    if (r.hooks.after_backward) r.hooks.after_backward(r.params);
    if (c.optimizer.grad_clip > 0) torch::nn::utils::clip_grad_norm_(r.params, c.optimizer.grad_clip);
    r.optimizer->step();
    if (r.average) {
      // torchvision resets the average to the weights while the learning rate warms up (here
      // measured in fractional epochs, as the warm-up itself).
      const double progress =
          static_cast<double>(epoch) + static_cast<double>(b + 1) / static_cast<double>(nb);
      if (progress <= c.schedule.warmup_epochs) {
        r.average->reset(*r.net);
      } else {
        r.average->update(*r.net, epoch * static_cast<int64_t>(nb) + static_cast<int64_t>(b) + 1);
      }
    }
    meter.update(logits, batch.labels, loss_value);
    ++b;
    ++r.steps;
    const int64_t done = epoch * static_cast<int64_t>(nb) + static_cast<int64_t>(b);
    if (c.run.time_budget_minutes > 0 && !r.fitted()) {
      fit_to_budget(r, done, nb, batch.images);
      if (r.fitted()) {
        const auto last = r.batches_in_epoch(epoch, nb);
        progress.retarget(fmt::format("epoch {}/{}", epoch + 1, r.planned_epochs()),
                          static_cast<size_t>(last - std::min<int64_t>(first, last)));
      }
    }
    if (!c.run.quiet)
      progress.step(batch.labels.size(0),
                    fmt::format("loss {:.4f} top-1 {:.2f}% lr {:.4f}", meter.loss(), meter.top1(), lr));
    if (r.fitted() && done >= r.planned_steps(nb)) return true;  // the fitted schedule ends here
    if (!r.stop_now()) continue;
    r.state.next_batch = static_cast<int64_t>(b);
    if (b >= nb) return true;  // stopped exactly at the end of the epoch: finish it normally
    // The checkpoint holds the epoch's meter summed over ranks; rank 0 alone resumes from it.
    ClassificationMeter total = meter;
    if (r.hooks.reduce_meter) r.hooks.reduce_meter(total);
    r.state.partial_meter = total.to_tensor();
    r.state.epochs_done = epoch;
    if (r.lead)
      save_checkpoint(last_checkpoint_path(c.run.out_dir), *r.net, r.optimizer.get(), r.state, r.extra(),
                      r.averaged());
    if (!c.run.quiet) {
      progress.finish("stopped");
      fmt::print(stderr, "stopped at epoch {} batch {}/{}; checkpoint saved, the run can be resumed\n",
                 epoch + 1, b, nb);
    }
    return false;
  }
  return true;
}

// Held-out evaluation, metrics line, curves and checkpoints at the end of an epoch.
void finish_epoch(Run& r, int64_t epoch, ClassificationMeter& meter, double lr, double train_seconds,
                  data::DataLoader& held_out_loader, const Progress& progress) {
  const auto& c = r.c;
  const int64_t classes = r.data.train->num_classes();
  if (r.hooks.reduce_meter) r.hooks.reduce_meter(meter);
  if (r.hooks.before_evaluation) r.hooks.before_evaluation(*r.net);
  auto val = evaluate(*r.net, held_out_loader, classes);
  if (r.hooks.reduce_meter) r.hooks.reduce_meter(val);
  EpochMetrics m;
  m.epoch = epoch + 1;
  m.lr = lr;
  m.train_loss = meter.loss();
  m.train_top1 = meter.top1();
  m.train_top5 = meter.top5();
  m.val_loss = val.loss();
  m.val_top1 = val.top1();
  m.val_top5 = val.top5();
  // A finite training loss can still hide a diverged model (lr 1e30 trained on with a loss of
  // 1e20 while every held-out logit overflowed): stop before its checkpoint replaces a good one.
  if (!std::isfinite(m.val_loss))
    throw NonFiniteLoss(
        fmt::format("{} loss became {} after epoch {} (lr {:.4g}); stopping — the last good "
                    "checkpoint {} is kept (try a lower learning rate)",
                    r.held_out_name, m.val_loss, epoch + 1, lr, last_checkpoint_path(c.run.out_dir)));
  m.seconds = progress.elapsed_seconds();
  m.train_img_per_s = train_seconds > 0 ? static_cast<double>(meter.count()) / train_seconds : 0;
  if (r.average) {
    if (r.hooks.before_evaluation) r.hooks.before_evaluation(r.average->model());
    auto ema = evaluate(r.average->model(), held_out_loader, classes);
    if (r.hooks.reduce_meter) r.hooks.reduce_meter(ema);
    m.ema_val_loss = ema.loss(), m.ema_val_top1 = ema.top1(), m.ema_val_top5 = ema.top5();
  }
  r.result.history.push_back(m);
  if (r.lead) {
    append_line(metrics_path(c.run.out_dir), to_json(m).dump());
    if (plot::png_charts_available())
      save_training_curves((fs::path(c.run.out_dir) / "training_curves.png").string(), r.result.history,
                           c.model + " on " + c.data.dataset, r.held_out_name);
  }
  if (!c.run.quiet)
    fmt::print(
        stderr,
        "epoch {}/{}: train loss {:.4f} top-1 {:.2f}% | {} loss {:.4f} top-1 {:.2f}% top-5 {:.2f}% | {:.0f} "
        "img/s\n",
        m.epoch, r.planned_epochs(), m.train_loss, m.train_top1, r.held_out_name, m.val_loss, m.val_top1,
        m.val_top5, m.train_img_per_s);
  if (!c.run.quiet && m.ema_val_top1)
    fmt::print(stderr, "  weight average (EMA): {} loss {:.4f} top-1 {:.2f}%\n", r.held_out_name,
               *m.ema_val_loss, *m.ema_val_top1);
  r.state.epochs_done = epoch + 1;
  r.state.next_batch = 0;
  r.state.partial_meter = torch::Tensor();
  // The better of the raw weights and their average on the held-out split.
  const bool ema_better = m.ema_val_top1 && *m.ema_val_top1 > m.val_top1;
  const double top1 = ema_better ? *m.ema_val_top1 : m.val_top1;
  const bool best = top1 > r.state.best_top1;
  if (best) {
    r.state.best_top1 = top1;
    r.state.best_epoch = m.epoch;
  }
  if (!r.lead) return;
  save_checkpoint(last_checkpoint_path(c.run.out_dir), *r.net, r.optimizer.get(), r.state, r.extra(),
                  r.averaged());
  if (best) {
    save_checkpoint(best_checkpoint_path(c.run.out_dir), *r.net, nullptr, r.state, r.extra(), r.averaged());
    // The same weights as a torch.save state_dict, for Python (torch.load(..., weights_only=True)),
    // and best_model.json saying which weights they are.
    io::save_module((fs::path(c.run.out_dir) / "best_model.pt").string(),
                    ema_better ? static_cast<const torch::nn::Module&>(r.average->model()) : *r.net);
    const nlohmann::json which = {{"weights", ema_better ? "ema" : "raw"},
                                  {"epoch", m.epoch},
                                  {"held_out", r.held_out_name},
                                  {"top1", top1}};
    util::write_file_atomic((fs::path(c.run.out_dir) / "best_model.json").string(), which.dump(2) + "\n");
  }
}

// One predicted class per line, in dataset order.
void write_predictions(const std::string& path, const std::vector<int64_t>& predictions) {
  std::string text;
  text.reserve(predictions.size() * 3);
  for (const auto p : predictions) text += std::to_string(p) + "\n";
  util::write_file_atomic(path, text);
}

// The finished run's final weights on the test set: evaluated once, never used to choose.
RunResult final_result(Run& r, const data::LoaderOptions& lo) {
  const auto& last = r.result.history.back();
  RunResult f;
  f.epochs = last.epoch;
  if (r.fitted() && r.state.fitted_epochs < static_cast<double>(r.c.run.epochs))  // the budget cut it short
    f.fitted_epochs = r.state.fitted_epochs;
  if (!r.data.val) {
    f.test_loss = last.val_loss, f.test_top1 = last.val_top1, f.test_top5 = last.val_top5;
  } else {
    f.val_loss = last.val_loss, f.val_top1 = last.val_top1, f.val_top5 = last.val_top5;
    data::DataLoader test_loader(r.data.test, r.data.eval_transforms, lo);
    if (r.hooks.before_evaluation) r.hooks.before_evaluation(*r.net);
    const bool one_process = !r.hooks.reduce_meter;  // ranks see shards: no per-image file then
    auto test = evaluate(*r.net, test_loader, r.data.test->num_classes(), false, one_process);
    if (r.hooks.reduce_meter) r.hooks.reduce_meter(test);
    f.test_loss = test.loss(), f.test_top1 = test.top1(), f.test_top5 = test.top5();
    if (one_process && r.lead) write_predictions(test_predictions_path(r.c.run.out_dir), test.predictions());
  }
  if (r.average) {
    if (r.data.val)
      f.ema_val_loss = last.ema_val_loss, f.ema_val_top1 = last.ema_val_top1,
      f.ema_val_top5 = last.ema_val_top5;
    data::DataLoader test_loader(r.data.test, r.data.eval_transforms, lo);
    if (r.hooks.before_evaluation) r.hooks.before_evaluation(r.average->model());
    auto test = evaluate(r.average->model(), test_loader, r.data.test->num_classes());
    if (r.hooks.reduce_meter) r.hooks.reduce_meter(test);
    f.ema_test_loss = test.loss(), f.ema_test_top1 = test.top1(), f.ema_test_top5 = test.top5();
  }
  if (r.lead) util::write_file_atomic(result_path(r.c.run.out_dir), to_json(f).dump(2) + "\n");
  return f;
}

}  // namespace

double ema_update_decay(const TrainConfig& c, int world_size) {
  const double adjust = static_cast<double>(world_size) * static_cast<double>(c.run.batch_size) *
                        static_cast<double>(c.regularization.ema_steps) / static_cast<double>(c.run.epochs);
  return 1.0 - std::min(1.0, (1.0 - c.regularization.ema_decay) * adjust);
}

void save_training_curves(const std::string& path, const std::vector<EpochMetrics>& history,
                          const std::string& title, const std::string& held_out_name) {
  plot::Chart loss{title + ": loss", "epoch", "cross-entropy loss", {}, false};
  plot::Chart acc{title + ": top-1 (%)", "epoch", "top-1 accuracy (%)", {}, false};
  plot::Series tl{"train", {}, {}}, vl{held_out_name, {}, {}}, ta{"train", {}, {}}, va{held_out_name, {}, {}};
  for (const auto& m : history) {
    const auto e = static_cast<double>(m.epoch);
    tl.x.push_back(e), tl.y.push_back(m.train_loss), vl.x.push_back(e), vl.y.push_back(m.val_loss);
    ta.x.push_back(e), ta.y.push_back(m.train_top1), va.x.push_back(e), va.y.push_back(m.val_top1);
  }
  loss.series = {tl, vl};
  acc.series = {ta, va};
  loss.integer_x = acc.integer_x = true;
  plot::save_charts_png(path, {loss, acc}, 2);
}

TrainResult train(const TrainConfig& config, const TrainHooks& hooks) {
  Run r(config, hooks);
  r.lead = hooks.rank == 0;
  if (!r.lead) r.c.run.quiet = true;
  prepare_config(r.c, hooks.world_size);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  util::set_intra_op_threads(r.c.run.threads > 0 ? r.c.run.threads
                                                 : cores);  // and OpenBLAS to 1 (util/threads.h)
  claim_folder(r);
  build(r);
  const auto& c = r.c;
  const auto config_json = to_json(c);
  restore_or_start(r, config_json.dump());
  if (hooks.on_ready) hooks.on_ready(*r.net, r.extra());
  if (r.lead) util::write_file_atomic(config_path(c.run.out_dir), config_json.dump(2) + "\n");
  if (!c.run.quiet) {
    fmt::print(stderr, "config {}\n", config_json.dump());
    fmt::print(stderr, "model {}: {} parameters | train {} | {} {} | {} threads\n", c.model,
               models::count_parameters(*r.net), r.data.train->description(), r.held_out_name,
               r.held_out->description(), torch::get_num_threads());
  }

  data::LoaderOptions lo;
  lo.batch_size = c.run.batch_size;
  lo.seed = c.run.seed;
  lo.workers = c.run.workers;
  lo.channels_last = c.run.channels_last;
  lo.drop_last =
      r.data.train->size() > static_cast<size_t>(c.run.batch_size) * static_cast<size_t>(hooks.world_size);
  lo.rank = hooks.rank;
  lo.world_size = hooks.world_size;
  data::DataLoader train_loader(r.data.train, r.data.train_transforms, lo);
  lo.shuffle = false;
  lo.drop_last = false;
  lo.pad_shards = false;  // every held-out image exactly once across ranks
  data::DataLoader held_out_loader(r.held_out, r.data.eval_transforms, lo);
  const size_t nb = train_loader.batches_per_epoch();

  for (int64_t epoch = r.state.epochs_done; epoch < r.planned_epochs(); ++epoch) {
    torch::manual_seed(c.run.seed * 1000003 + static_cast<uint64_t>(epoch));
    ClassificationMeter meter(r.data.train->num_classes());
    const size_t first = static_cast<size_t>(r.state.next_batch);
    if (first > 0 && r.state.partial_meter.defined() && hooks.rank == 0)
      meter.from_tensor(r.state.partial_meter);
    train_loader.start_epoch(epoch, first);
    set_train_mode(r);
    const auto last = static_cast<size_t>(r.batches_in_epoch(epoch, nb));
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, r.planned_epochs()),
                      last - std::min(first, last));
    double lr = 0;
    if (!train_epoch(r, epoch, train_loader, meter, progress, lr)) {
      r.result.stopped_early = true;
      r.result.best_top1 = r.state.best_top1;
      return r.result;
    }
    if (!c.run.quiet) progress.finish(fmt::format("loss {:.4f} top-1 {:.2f}%", meter.loss(), meter.top1()));
    finish_epoch(r, epoch, meter, lr, progress.elapsed_seconds(), held_out_loader, progress);
    if (r.stop_now()) {
      r.result.stopped_early = epoch + 1 < r.planned_epochs();
      if (r.result.stopped_early && !c.run.quiet)
        fmt::print(stderr, "stopped after epoch {}; checkpoint saved, the run can be resumed\n", epoch + 1);
      break;
    }
  }
  r.result.best_top1 = r.state.best_top1;
  if (!r.result.stopped_early && !r.result.history.empty() &&
      r.result.history.back().epoch == r.planned_epochs())
    r.result.final = final_result(r, lo);
  return r.result;
}

}  // namespace rla::engine
