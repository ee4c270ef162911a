#include "bench/progress.h"

#include <unistd.h>

#include <fmt/format.h>

namespace eco::bench {
namespace {

double per_s(uint64_t n, double length_s) { return length_s > 0 ? double(n) / length_s : 0.0; }
double us_at(const IntervalSample& s, double p) {
  return s.latency && s.latency->count() ? double(s.latency->value_at_percentile(p)) / 1000.0 : 0.0;
}
double max_us(const IntervalSample& s) { return s.latency && s.latency->count() ? double(s.latency->max()) / 1000.0 : 0.0; }

}  // namespace

bool progress_wanted(bool quiet) { return !quiet && isatty(STDERR_FILENO) == 1; }

std::string format_progress(const IntervalSample& s) {
  bool any = s.latency && s.latency->count() > 0;
  auto lat = [&](double us) { return any ? format_latency_us(us) : std::string("-"); };
  std::string errors;
  for (size_t i = 0; i < kErrorKinds; ++i)
    if (uint64_t n = s.errors[ErrorKind(i)]) errors += fmt::format(" {} {}", n, error_kind_name(ErrorKind(i)));
  return fmt::format("[{:5.1f}/{:.1f} s{}]{}{} {:>10.0f} rt/s {:>8.2f} MB/s  p50 {:>8}  p99 {:>8}  max {:>8}  errors{}",
                     s.run_elapsed_s, s.run_total_s, s.warming_up ? " warm-up" : "", s.run_label.empty() ? "" : " ",
                     s.run_label, per_s(s.round_trips, s.length_s), per_s(s.bytes, s.length_s) / 1e6,
                     lat(us_at(s, 50)), lat(us_at(s, 99)), lat(max_us(s)), errors.empty() ? " none" : errors);
}

void print_progress(const IntervalSample& s) {
  // \r and erase-line: one line rewritten in place, nothing scrolls.
  std::string line = "\r\x1b[K" + format_progress(s);
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

void clear_progress() { (void)!write(STDERR_FILENO, "\r\x1b[K", 4); }

std::string csv_header() {
  std::string h = "run,start_s,length_s,phase,rate,rt_per_s,mb_per_s,p50_us,p99_us,max_us";
  for (size_t i = 0; i < kErrorKinds; ++i) h += fmt::format(",{}", error_kind_name(ErrorKind(i)));
  return h + "\n";
}

std::string csv_line(const IntervalSample& s) {
  std::string line = fmt::format("{},{:.3f},{:.3f},{},{},{:.1f},{:.4f},{:.1f},{:.1f},{:.1f}", s.run, s.start_s,
                                 s.length_s, s.warming_up ? "warmup" : "measure",
                                 s.rate ? fmt::format("{:g}", *s.rate) : std::string(),
                                 per_s(s.round_trips, s.length_s), per_s(s.bytes, s.length_s) / 1e6, us_at(s, 50),
                                 us_at(s, 99), max_us(s));
  for (size_t i = 0; i < kErrorKinds; ++i) line += fmt::format(",{}", s.errors[ErrorKind(i)]);
  return line + "\n";
}

Result<IntervalOutputs> IntervalOutputs::open(const BenchOptions& o, int64_t start_epoch_ms) {
  IntervalOutputs out;
  out.live_ = o.progress && progress_wanted(o.quiet);
  if (!o.hist_file.empty()) {
    auto w = HdrLogWriter::create(o.hist_file, start_epoch_ms);
    if (!w) return w.error();
    out.hist_.emplace(std::move(*w));
  }
  if (!o.csv_file.empty()) {
    auto f = TextFile::create(o.csv_file, "interval CSV");
    if (!f) return f.error();
    if (auto st = f->write(csv_header()); !st) return st.error();
    out.csv_.emplace(std::move(*f));
  }
  return out;
}

void IntervalOutputs::add(const IntervalSample& s) {
  if (live_ && !s.last && s.length_s >= 0.5) print_progress(s);
  if (!failed_.empty()) return;
  Status st;
  if (hist_) st = hist_->append(s.start_s, s.length_s, *s.latency);
  if (st && csv_) st = csv_->write(csv_line(s));
  if (!st) failed_ = st.error().message;
}

void IntervalOutputs::end_run() const {
  if (live_) clear_progress();
}

Status IntervalOutputs::close() {
  Status hist = hist_ ? hist_->close() : Status{};
  Status csv = csv_ ? csv_->close() : Status{};
  if (!failed_.empty()) return Error{failed_};
  return !hist ? hist : csv;
}

}  // namespace eco::bench
