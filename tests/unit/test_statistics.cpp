// util/statistics.h against values computed independently: every golden below was printed by
// scipy 1.10.1 / statsmodels 0.13.5 (Debian 12's python3-scipy, python3-statsmodels) with the call
// named beside it, except the t quantiles: those were solved with mpmath at 40 digits
// (findroot of 0.5 * betainc(df/2, 1/2, 0, df/(df+t^2), regularized=True) - tail), because
// scipy's stats.t.ppf is off by up to 1e-9 relative. Agreement to 1e-12 relative shows the t
// quantiles are exact, not a table.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "rla/engine/run.h"
#include "rla/engine/train_config.h"
#include "rla/tasks/report.h"
#include "rla/util/statistics.h"

using namespace rla::util;

namespace {

void expect_rel(double got, double want, double rel = 1e-9) {
  EXPECT_NEAR(got, want, rel * std::max(1.0, std::fabs(want))) << "want " << want;
}

}  // namespace

TEST(Statistics, IncompleteBetaMatchesScipy) {
  expect_rel(incomplete_beta(2.5, 0.5, 0.3), 0.01892712407194565);   // special.betainc(2.5, 0.5, 0.3)
  expect_rel(incomplete_beta(0.5, 0.5, 0.999), 0.9798649583666225);  // special.betainc(0.5, 0.5, 0.999)
  expect_rel(incomplete_beta(10, 3, 0.7), 0.2528153478549999);       // special.betainc(10, 3, 0.7)
  EXPECT_EQ(incomplete_beta(3, 4, 0), 0.0);
  EXPECT_EQ(incomplete_beta(3, 4, 1), 1.0);
  EXPECT_THROW(incomplete_beta(0, 1, 0.5), std::invalid_argument);
  EXPECT_THROW(incomplete_beta(1, 1, 1.5), std::invalid_argument);
}

TEST(Statistics, StudentTQuantilesAndCdfAreExact) {
  struct Case {
    double q, df, want;  // the mpmath root (stats.t.ppf(q, df) agrees to 1e-9)
  };
  for (const auto& c : {Case{0.975, 1, 12.706204736174693}, Case{0.975, 2, 4.3026527297494618},
                        Case{0.975, 3.7, 2.8675207071911885}, Case{0.975, 4, 2.7764451051977935},
                        Case{0.99375, 5.2, 3.7402236324299219}, Case{0.95, 10, 1.8124611228116759},
                        Case{0.975, 1000, 1.9623390808264081}, Case{0.025, 6, -2.4469118511449699},
                        Case{0.999, 2.5, 13.82219311086596}}) {
    SCOPED_TRACE("q " + std::to_string(c.q) + " df " + std::to_string(c.df));
    expect_rel(t_quantile(c.q, c.df), c.want, 1e-12);
    expect_rel(t_cdf(c.want, c.df), c.q, 1e-13);
  }
  expect_rel(t_cdf(2.0, 3), 0.9303370157205785);      // stats.t.cdf(2.0, 3)
  expect_rel(t_cdf(-1.3, 7.5), 0.11606338940780428);  // stats.t.cdf(-1.3, 7.5)
  expect_rel(t_cdf(10, 2), 0.9950737714883371);       // stats.t.cdf(10, 2)
  EXPECT_EQ(t_cdf(0, 4), 0.5);
  expect_rel(t_quantile(0.975, INFINITY), 1.959963984540054);  // stats.norm.ppf(0.975)
  EXPECT_THROW(t_quantile(1.0, 3), std::invalid_argument);
  EXPECT_THROW(t_cdf(1.0, 0), std::invalid_argument);
}

TEST(Statistics, WelchPairedAndEquivalenceMatchScipy) {
  const std::vector<double> a{7.06, 7.2, 6.95, 7.31, 7.0}, b{6.69, 6.8, 6.62, 6.75, 6.9};
  const auto w = welch(a, b);
  // stats.ttest_ind(a, b, equal_var=False) and the Welch–Satterthwaite df / se computed by hand.
  expect_rel(w.diff / w.se, 4.3067973012450835);
  expect_rel(w.p_two_sided(), 0.0032487787634326703);
  expect_rel(w.df, 7.260422995331259);
  expect_rel(w.se, 0.08173126696681016);
  const auto [lo, hi] = w.interval(0.95);
  expect_rel(lo, 0.16013269557530208);
  expect_rel(hi, 0.5438673044246968);
  // TOST with margin 0.5: max(1 - t.cdf((d + .5) / se, df), t.cdf((d - .5) / se, df)).
  expect_rel(w.p_equivalence(0.5), 0.0557774698703114);
  // stats.ttest_rel(a, b)
  const auto p = paired(a, b);
  expect_rel(p.diff / p.se, 4.748958079353954);
  expect_rel(p.p_two_sided(), 0.008977782298980922);
  EXPECT_EQ(p.df, 4.0);
  EXPECT_THROW(welch({1.0}, b), std::invalid_argument);
  EXPECT_THROW(paired(a, {1.0, 2.0}), std::invalid_argument);
  // Equal values: a zero-width interval and a decided test, never a division by zero.
  const auto flat = welch({1, 1}, {1, 1});
  EXPECT_EQ(flat.p_two_sided(), 1.0);
  EXPECT_EQ(flat.interval(0.95).first, 0.0);
  EXPECT_EQ(flat.p_equivalence(0.5), 0.0);
}

TEST(Statistics, HolmAndMcNemarMatchStatsmodels) {
  // multipletests(p, method='holm')[1]
  const auto h1 = holm_adjust({0.01, 0.04, 0.03, 0.005});
  const std::vector<double> want1{0.03, 0.06, 0.06, 0.02};
  const auto h2 = holm_adjust({0.2, 0.01, 0.2, 0.04});
  const std::vector<double> want2{0.4, 0.04, 0.4, 0.12};
  for (size_t i = 0; i < 4; ++i) {
    expect_rel(h1[i], want1[i], 1e-12);
    expect_rel(h2[i], want2[i], 1e-12);
  }
  const auto levels = holm_levels({0.01, 0.04, 0.03, 0.005}, 0.05);
  EXPECT_DOUBLE_EQ(levels[3], 0.05 / 4);
  EXPECT_DOUBLE_EQ(levels[0], 0.05 / 3);
  EXPECT_DOUBLE_EQ(levels[2], 0.05 / 2);
  EXPECT_DOUBLE_EQ(levels[1], 0.05);
  // mcnemar([[0, b], [c, 0]], exact=True).pvalue
  expect_rel(mcnemar_exact(10, 3), 0.09228515625);
  expect_rel(mcnemar_exact(120, 90), 0.0451140878648407);
  expect_rel(mcnemar_exact(1000, 1100), 0.030720707864242486, 1e-7);
  EXPECT_EQ(mcnemar_exact(0, 0), 1.0);
  EXPECT_EQ(mcnemar_exact(5, 5), 1.0);
}

// The report's family: raw and Holm-adjusted p-values and the Holm-level interval against scipy /
// statsmodels (ttest_ind(equal_var=False), the TOST formula above, multipletests(method='holm'),
// stats.t.ppf(1 - 0.05 / 4, df) for the interval of the rank-2 comparison).
TEST(Statistics, ReportFamilyIsHolmCorrectedWithEquivalenceByTost) {
  using rla::tasks::Hypothesis;
  auto row = [](const std::string& label, std::vector<double> errors) {
    rla::tasks::ModelRow r;
    r.label = r.model = label;
    r.test_error.values = std::move(errors);
    return r;
  };
  const std::vector<rla::tasks::ModelRow> rows{row("B", {6.67, 6.63, 6.78}),  row("A1", {7.18, 6.99, 7.00}),
                                               row("A2", {6.48, 6.52, 6.63}), row("A3", {7.71, 7.30, 7.35}),
                                               row("A4", {8.5, 8.6, 8.4}),    row("A5", {7.0})};
  const auto family = rla::tasks::compare_family(rows,
                                                 {{"A1", "B", Hypothesis::kSuperiority},
                                                  {"A2", "B", Hypothesis::kEquivalence},
                                                  {"A3", "B", Hypothesis::kEquivalence}},
                                                 {});
  expect_rel(family[0].p, 0.011110891118184887);
  expect_rel(family[1].p, 0.0026316602240101794);
  expect_rel(family[2].p, 0.9137383896317199);
  expect_rel(family[0].p_holm, 0.022221782236369773);
  expect_rel(family[1].p_holm, 0.007894980672030538);
  expect_rel(family[2].p_holm, 0.9137383896317199);
  EXPECT_DOUBLE_EQ(family[0].level, 0.025);
  expect_rel(family[0].ci_holm.first, 0.08306437213970141);
  expect_rel(family[0].ci_holm.second, 0.6436022945269652);
  expect_rel(family[2].ci_bonferroni.first, -0.039263044812641645);
  EXPECT_EQ(family[0].verdict, "fails (A higher)");
  EXPECT_EQ(family[1].verdict, "holds (within ±0.5)");
  EXPECT_EQ(family[2].verdict, "inconclusive");
  // The interval that decides "not equivalent" is printed beside the equivalence verdicts.
  const auto md = rla::tasks::markdown_comparisons(family, {});
  EXPECT_NE(md.find("**inconclusive**; not-equivalent test: [-0.04, "), std::string::npos) << md;
  EXPECT_NE(md.find("(98.33 %) |\n"), std::string::npos) << md;
  // Far outside the margin: not equivalent; one run on a side: no test, and not in the family.
  const auto other = rla::tasks::compare_family(
      rows, {{"A4", "B", Hypothesis::kEquivalence}, {"A5", "B", Hypothesis::kSuperiority}}, {});
  EXPECT_EQ(other[0].verdict, "fails (not within ±0.5, A higher)");
  EXPECT_DOUBLE_EQ(other[0].level, 0.05);  // the only valid comparison: a family of one
  EXPECT_EQ(other[1].verdict, "too few runs");
  EXPECT_THROW(rla::tasks::compare_family(rows, {{"A1", "nope", Hypothesis::kSuperiority}}, {}),
               std::invalid_argument);
}

// The seed-paired view: runs matched by seed, the paired t, and McNemar's counts from the runs'
// per-image predictions (b = only A right, c = only B right).
TEST(Statistics, ReportPairsRunsBySeedAndCountsMcNemar) {
  namespace fs = std::filesystem;
  const auto root = fs::temp_directory_path() / ("rla_paired_" + std::to_string(::getpid()));
  fs::remove_all(root);
  const std::vector<int64_t> labels{0, 1, 2, 3, 0, 1};
  std::vector<rla::tasks::RunRecord> runs;
  auto add = [&](const std::string& model, uint64_t seed, double error, const std::vector<int64_t>& pred) {
    rla::tasks::RunRecord r;
    r.dir = (root / (model + std::to_string(seed))).string();
    fs::create_directories(r.dir);
    std::ofstream out(rla::engine::test_predictions_path(r.dir));
    for (auto p : pred) out << p << "\n";
    r.config.model = model;
    r.config.run.seed = seed;
    r.test_error = error;
    runs.push_back(r);
  };
  add("rla_resnet20", 0, 10.0, {0, 1, 2, 3, 1, 0});  // wrong on 4, 5
  add("rla_resnet20", 1, 12.0, {0, 1, 2, 0, 0, 1});  // wrong on 3
  add("rla_resnet20", 2, 11.0, {0, 1, 2, 3, 0, 1});  // B has no seed 2: not paired
  add("resnet20", 0, 9.0, {1, 1, 2, 3, 0, 1});       // wrong on 0
  add("resnet20", 1, 13.5, {0, 0, 0, 3, 0, 1});      // wrong on 1, 2
  runs[1].val_error = 11.5;  // the only run with a validation split: listed under its own seed
  const auto rows = rla::tasks::summarize_runs(runs, {"rla_resnet20", "resnet20"});
  EXPECT_EQ(rows[0].val_seeds, (std::vector<uint64_t>{1}));
  EXPECT_NE(rla::tasks::markdown_table(rows, false).find("| 1: 11.50 |"), std::string::npos);
  const auto pc = rla::tasks::compare_paired(
      runs, rows, {"rla_resnet20", "resnet20", rla::tasks::Hypothesis::kSuperiority}, labels);
  ASSERT_EQ(pc.seeds, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(pc.differences, (std::vector<double>{1.0, -1.5}));
  ASSERT_TRUE(pc.valid);
  EXPECT_DOUBLE_EQ(pc.paired.diff, -0.25);
  ASSERT_EQ(pc.per_seed.size(), 2u);
  EXPECT_EQ(pc.per_seed[0].b, 1);  // seed 0: only a right on image 0; only b right on 4, 5
  EXPECT_EQ(pc.per_seed[0].c, 2);
  EXPECT_EQ(pc.per_seed[1].b, 2);
  EXPECT_EQ(pc.per_seed[1].c, 1);
  EXPECT_EQ(pc.pooled.b, 3);
  EXPECT_EQ(pc.pooled.c, 3);
  EXPECT_DOUBLE_EQ(pc.pooled.p, 1.0);
  // Without labels (or predictions), McNemar is left out and the paired t stays.
  const auto no_labels = rla::tasks::compare_paired(runs, rows, {"rla_resnet20", "resnet20"}, {});
  EXPECT_TRUE(no_labels.per_seed.empty());
  EXPECT_TRUE(no_labels.valid);
  // A second finished run of one seed (a copied or repeated folder) is listed but not compared.
  add("resnet20", 1, 8.0, {0, 1, 2, 3, 0, 1});
  const auto twice = rla::tasks::summarize_runs(runs, {"rla_resnet20", "resnet20"});
  EXPECT_EQ(twice[1].seeds.size(), 3u);
  EXPECT_THROW(rla::tasks::compare_paired(runs, twice, {"rla_resnet20", "resnet20"}, {}),
               std::invalid_argument);
  EXPECT_THROW(rla::tasks::compare_family(twice, {{"rla_resnet20", "resnet20"}}, {}), std::invalid_argument);
  fs::remove_all(root);
}

// A run's result.json is read only when it holds a numeric test_top1, and only as a percentage.
TEST(Statistics, ReportReadsOnlyPlausibleResults) {
  namespace fs = std::filesystem;
  const auto root = fs::temp_directory_path() / ("rla_results_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto run = [&](const std::string& name, const std::string& result) {
    const auto dir = root / name;
    fs::create_directories(dir);
    rla::engine::TrainConfig c;
    c.model = "resnet20";
    std::ofstream(rla::engine::config_path(dir.string())) << rla::engine::to_json(c).dump();
    std::ofstream(rla::engine::result_path(dir.string())) << result;
    return dir.string();
  };
  const auto good = rla::tasks::read_run(run("good", R"({"test_top1": 91.5})"));
  ASSERT_TRUE(good && good->finished());
  EXPECT_DOUBLE_EQ(*good->test_error, 8.5);
  const auto keyless = rla::tasks::read_run(run("keyless", R"({"top1": "abc"})"));
  ASSERT_TRUE(keyless);
  EXPECT_FALSE(keyless->finished());  // was read as 0 % top-1, a 100 % error
  EXPECT_THROW(rla::tasks::read_run(run("over", R"({"test_top1": 150})")), std::invalid_argument);
  EXPECT_THROW(rla::tasks::read_run(run("under", R"({"test_top1": 91.5, "val_top1": -1})")),
               std::invalid_argument);
  fs::remove_all(root);
}
