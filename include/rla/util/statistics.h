#pragma once
// The statistics of controlled comparisons over seeds (docs/results_cifar.md, "Tests"): Student's
// t distribution computed exactly (regularized incomplete beta, to double precision), Welch's
// two-sample test and interval, two one-sided tests (TOST) for equivalence, the paired t test,
// Holm's step-down correction, and McNemar's exact test on paired per-example outcomes.
// Plain C++, no tensors: scipy.stats is the reference (tests/unit/test_statistics.cpp).
#include <cstdint>
#include <vector>

namespace rla::util {

/// I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1
/// (scipy.special.betainc). Throws std::invalid_argument outside that domain.
double incomplete_beta(double a, double b, double x);

/// P(T <= t) for Student's t with `df` > 0 degrees of freedom (scipy.stats.t.cdf); df may be
/// fractional (Welch) and +infinity (the normal distribution).
double t_cdf(double t, double df);
/// The q-quantile of Student's t, 0 < q < 1 (scipy.stats.t.ppf), to about 1e-12 relative.
double t_quantile(double q, double df);

/// A difference of means with its standard error and degrees of freedom.
struct MeanDifference {
  double diff = 0;  ///< mean(a) - mean(b) (Welch) or mean(a - b) (paired)
  double se = 0;    ///< its standard error; 0 when every value is equal
  double df = 0;    ///< degrees of freedom of its t statistic
  size_t na = 0, nb = 0;
  /// Two-sided p of H0: diff = 0. With se = 0: 1 for diff = 0, else 0.
  double p_two_sided() const;
  /// Two-sided confidence interval at `level` (e.g. 0.95): diff -/+ t_{(1+level)/2} * se.
  std::pair<double, double> interval(double level) const;
  /// Equivalence by two one-sided tests with margin m > 0: the larger of the p-values of
  /// H0: diff <= -m and H0: diff >= +m. Small = equivalent within (-m, +m).
  double p_equivalence(double margin) const;
};

/// Welch's t (unequal variances, Welch–Satterthwaite df) for mean(a) - mean(b); each side needs
/// at least two values (std::invalid_argument otherwise).
MeanDifference welch(const std::vector<double>& a, const std::vector<double>& b);
/// Paired t over the differences a[i] - b[i] (df = n - 1); sizes must match, n >= 2.
MeanDifference paired(const std::vector<double>& a, const std::vector<double>& b);

/// Holm's step-down adjusted p-values, in the input order: sort ascending, p_(i) * (m - i + 1),
/// running maximum, capped at 1 (statsmodels multipletests(method='holm')).
std::vector<double> holm_adjust(const std::vector<double>& p);
/// The level Holm tests each hypothesis at, in the input order: alpha / (m - rank + 1) with rank
/// its 1-based position in ascending order of p (ties keep input order).
std::vector<double> holm_levels(const std::vector<double>& p, double alpha);

/// McNemar's exact test on paired outcomes: b = examples only the first classifier gets right,
/// c = only the second. Two-sided binomial p: min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2)
/// (statsmodels mcnemar(exact=True)); 1 when b + c = 0.
double mcnemar_exact(int64_t b, int64_t c);

/// Mean and sample standard deviation (n - 1); std is 0 for fewer than two values.
double mean(const std::vector<double>& v);
double sample_std(const std::vector<double>& v);

}  // namespace rla::util
