#pragma once
// What happened in one interval (about a second) of a run, and the ways bench shows
// it as it goes: the live line on a terminal (stderr, rewritten in place), a --csv
// line, a --hist log line. All three carry the same columns: rt/s, MB/s, p50, p99,
// max and the errors by kind.
#include <cstdint>
#include <optional>
#include <string>

#include "bench/hdr_log.h"
#include "bench/histogram.h"
#include "bench/options.h"
#include "bench/result.h"
#include "bench/text_file.h"

namespace eco::bench {

struct IntervalSample {
  uint32_t run = 1;              // repetition or search step, from 1
  std::string run_label;         // "rep 2/5", "step 3 at 1200 msg/s"; empty for a single run
  double start_s = 0;            // since the first run started
  double length_s = 0;
  double run_elapsed_s = 0, run_total_s = 0;
  bool warming_up = false;       // the interval ended before the measured window began
  std::optional<double> rate;    // asked, in rate_unit; none: closed loop
  uint64_t round_trips = 0, bytes = 0;
  ErrorCounts errors;            // new in this interval
  const Histogram* latency = nullptr;  // this interval's samples
  bool last = false;             // the run's final (often partial) interval
};

// Whether to show the live line: stderr is a terminal and --quiet was not given.
bool progress_wanted(bool quiet);
std::string format_progress(const IntervalSample& s);
void print_progress(const IntervalSample& s);
void clear_progress();

// --csv: the header, and one line per interval.
std::string csv_header();
std::string csv_line(const IntervalSample& s);

// Where the intervals of every run of one invocation go: the live line, --csv and
// --hist. A write that fails is reported once, at close; the run goes on.
class IntervalOutputs {
 public:
  static Result<IntervalOutputs> open(const BenchOptions& o, int64_t start_epoch_ms);
  bool live() const { return live_; }
  void add(const IntervalSample& s);
  void end_run() const;  // clears the live line
  Status close();

 private:
  bool live_ = false;
  std::optional<HdrLogWriter> hist_;
  std::optional<TextFile> csv_;
  std::string failed_;
};

}  // namespace eco::bench
