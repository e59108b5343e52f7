#include "rla/util/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace rla::util {
namespace {

// The continued fraction of I_x(a, b) (its even and odd terms), evaluated by the modified Lentz
// method; converges fast for x < (a + 1) / (a + b + 2).
double beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-16;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  d = 1.0 / (std::fabs(d) < kTiny ? kTiny : d);
  double f = d;
  for (int m = 1; m <= 10000; ++m) {
    const double dm = static_cast<double>(m);
    for (int odd = 0; odd < 2; ++odd) {
      const double num = odd == 0 ? dm * (b - dm) * x / ((a + 2 * dm - 1) * (a + 2 * dm))
                                  : -(a + dm) * (a + b + dm) * x / ((a + 2 * dm) * (a + 2 * dm + 1));
      d = 1.0 + num * d;
      d = 1.0 / (std::fabs(d) < kTiny ? kTiny : d);
      c = 1.0 + num / c;
      if (std::fabs(c) < kTiny) c = kTiny;
      const double step = c * d;
      f *= step;
      if (odd == 1 && std::fabs(step - 1.0) < kEps) return f;
    }
  }
  return f;  // not reached for the arguments used here
}

// P(T > t) for t >= 0: half of I_{df / (df + t^2)}(df / 2, 1 / 2), computed without 1 - x
// cancellation.
double t_upper_tail(double t, double df) {
  if (std::isinf(df)) return 0.5 * std::erfc(t / std::sqrt(2.0));
  return 0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t));
}

void check_df(double df) {
  if (!(df > 0))
    throw std::invalid_argument("t distribution: degrees of freedom must be > 0, got " + std::to_string(df));
}

double sum_sq_dev(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s;
}

}  // namespace

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0 && b > 0) || !(x >= 0 && x <= 1))
    throw std::invalid_argument("incomplete beta: needs a, b > 0 and 0 <= x <= 1");
  if (x == 0 || x == 1) return x;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * beta_fraction(a, b, x) / a;
  return 1.0 - std::exp(log_front) * beta_fraction(b, a, 1.0 - x) / b;
}

double t_cdf(double t, double df) {
  check_df(df);
  if (std::isnan(t)) return t;
  const double upper = t_upper_tail(std::fabs(t), df);
  return t >= 0 ? 1.0 - upper : upper;
}

double t_quantile(double q, double df) {
  check_df(df);
  if (!(q > 0 && q < 1))
    throw std::invalid_argument("t quantile: q must be in (0, 1), got " + std::to_string(q));
  if (q == 0.5) return 0.0;
  // Solve P(T > t) = tail for t >= 0 by bisection on the monotone upper tail.
  const double tail = q > 0.5 ? 1.0 - q : q;
  double lo = 0.0, hi = 1.0;
  while (t_upper_tail(hi, df) > tail) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e300) break;
  }
  for (int i = 0; i < 2000 && hi - lo > 1e-15 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (t_upper_tail(mid, df) > tail ? lo : hi) = mid;
  }
  const double t = 0.5 * (lo + hi);
  return q > 0.5 ? t : -t;
}

double MeanDifference::p_two_sided() const {
  if (se == 0) return diff == 0 ? 1.0 : 0.0;
  return 2.0 * t_upper_tail(std::fabs(diff) / se, df);
}

std::pair<double, double> MeanDifference::interval(double level) const {
  if (!(level > 0 && level < 1)) throw std::invalid_argument("interval: level must be in (0, 1)");
  const double half = se == 0 ? 0.0 : t_quantile(0.5 + 0.5 * level, df) * se;
  return {diff - half, diff + half};
}

double MeanDifference::p_equivalence(double margin) const {
  if (!(margin > 0)) throw std::invalid_argument("equivalence: the margin must be > 0");
  if (se == 0) return std::fabs(diff) < margin ? 0.0 : 1.0;
  // H0: diff <= -m is rejected for large (diff + m) / se; H0: diff >= m for small (diff - m) / se.
  const double p_low = 1.0 - t_cdf((diff + margin) / se, df);
  const double p_high = t_cdf((diff - margin) / se, df);
  return std::max(p_low, p_high);
}

MeanDifference welch(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2)
    throw std::invalid_argument("welch: each side needs at least two values, got " +
                                std::to_string(a.size()) + " and " + std::to_string(b.size()));
  MeanDifference r;
  r.na = a.size(), r.nb = b.size();
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double va = sum_sq_dev(a) / (na - 1) / na, vb = sum_sq_dev(b) / (nb - 1) / nb;
  r.diff = mean(a) - mean(b);
  r.se = std::sqrt(va + vb);
  r.df = r.se > 0 ? (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1)) : na + nb - 2;
  return r;
}

MeanDifference paired(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2)
    throw std::invalid_argument("paired: needs two equally long lists of at least two values, got " +
                                std::to_string(a.size()) + " and " + std::to_string(b.size()));
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  MeanDifference r;
  r.na = r.nb = a.size();
  const double n = static_cast<double>(d.size());
  r.diff = mean(d);
  r.se = std::sqrt(sum_sq_dev(d) / (n - 1) / n);
  r.df = n - 1;
  return r;
}

std::vector<double> holm_adjust(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&p](size_t i, size_t j) { return p[i] < p[j]; });
  std::vector<double> adjusted(m);
  double running = 0;
  for (size_t rank = 0; rank < m; ++rank) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - rank) * p[order[rank]]));
    adjusted[order[rank]] = running;
  }
  return adjusted;
}

std::vector<double> holm_levels(const std::vector<double>& p, double alpha) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&p](size_t i, size_t j) { return p[i] < p[j]; });
  std::vector<double> levels(m);
  for (size_t rank = 0; rank < m; ++rank) levels[order[rank]] = alpha / static_cast<double>(m - rank);
  return levels;
}

double mcnemar_exact(int64_t b, int64_t c) {
  if (b < 0 || c < 0) throw std::invalid_argument("mcnemar: counts must be >= 0");
  const int64_t n = b + c;
  if (n == 0) return 1.0;
  const int64_t k = std::min(b, c);
  // P(X <= k) = sum_i C(n, i) / 2^n, summed in log space from the largest term down.
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  double sum = 0;
  for (int64_t i = k; i >= 0; --i) {
    const double term =
        std::exp(std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(i) + 1) -
                 std::lgamma(static_cast<double>(n - i) + 1) + log_half_n);
    sum += term;
    if (term < sum * 1e-18) break;
  }
  return std::min(1.0, 2.0 * sum);
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  return std::sqrt(sum_sq_dev(v) / static_cast<double>(v.size() - 1));
}

}  // namespace rla::util
