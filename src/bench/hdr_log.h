#pragma once
// HdrHistogram interval logs ("log format version 1.3"), written line for line as
// HdrHistogram's HistogramLogWriter does, so HistogramLogProcessor (Java),
// hdr-histogram-js and the online HdrHistogram plotter read `eco bench --hist` files.
// Values are nanoseconds; the Interval_Max column is in milliseconds (the writer's
// default max-value unit ratio of 1e6), as those tools expect.
#include <cstdint>
#include <string>
#include <string_view>

#include "bench/histogram.h"
#include "bench/text_file.h"
#include "util/result.h"

namespace eco::bench {

// The header: a comment, the format version, StartTime and BaseTime (both the run's
// wall-clock start, so interval timestamps are seconds since the run started) and the
// column legend.
std::string hdr_log_header(int64_t start_epoch_ms, std::string_view comment);
// One line: "start,length,max_ms,base64", start relative to the start time.
std::string hdr_log_interval(double start_offset_s, double length_s, const Histogram& h);

// Writes a log file as a run goes: the header at create(), one line per interval.
// Not for the hot path: called once per interval from the reporting thread.
class HdrLogWriter {
 public:
  static Result<HdrLogWriter> create(const std::string& path, int64_t start_epoch_ms,
                                     std::string_view comment = "eco bench latency histogram, values in ns");
  Status append(double start_offset_s, double length_s, const Histogram& h);
  // Closes the file, reporting a failed close (a full disk can surface only here).
  Status close();

 private:
  explicit HdrLogWriter(TextFile file) : file_(std::move(file)) {}

  TextFile file_;
};

// Milliseconds since the Unix epoch now (the StartTime a run records).
int64_t wall_clock_ms();

}  // namespace eco::bench
