#include "bench/hdr_log.h"

#include <time.h>

#include <cstdio>

namespace eco::bench {

namespace {
std::string format(const char* fmt, double a, double b = 0, double c = 0) {
  char buf[128];
  int n = std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return std::string(buf, size_t(n > 0 ? n : 0));
}
}  // namespace

std::string hdr_log_header(int64_t start_epoch_ms, std::string_view comment) {
  // java.util.Date.toString()'s shape ("Wed Nov 25 15:03:13 UTC 2026"): readers only
  // parse the number before it, but people read the rest.
  time_t secs = time_t(start_epoch_ms / 1000);
  tm local{};
  localtime_r(&secs, &local);
  char date[64];
  size_t len = strftime(date, sizeof date, "%a %b %d %H:%M:%S %Z %Y", &local);
  double start_s = double(start_epoch_ms) / 1000.0;

  std::string out;
  if (!comment.empty()) {
    out += '#';
    out += comment;
    out += '\n';
  }
  out += "#[Histogram log format version 1.3]\n";
  out += format("#[StartTime: %.3f (seconds since epoch), ", start_s);
  out.append(date, len);
  out += "]\n";
  out += format("#[BaseTime: %.3f (seconds since epoch)]\n", start_s);
  out += "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";
  return out;
}

std::string hdr_log_interval(double start_offset_s, double length_s, const Histogram& h) {
  // HistogramLogWriter: "%.3f,%.3f,%.3f,%s\n" with the max divided by 1e6 (ns -> ms).
  std::string out = format("%.3f,%.3f,%.3f,", start_offset_s, length_s, double(h.max()) / 1e6);
  out += h.encode_compressed_base64();
  out += '\n';
  return out;
}

int64_t wall_clock_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

Result<HdrLogWriter> HdrLogWriter::create(const std::string& path, int64_t start_epoch_ms,
                                          std::string_view comment) {
  auto file = TextFile::create(path, "histogram log");
  if (!file) return file.error();
  HdrLogWriter w(std::move(*file));
  if (Status s = w.file_.write(hdr_log_header(start_epoch_ms, comment)); !s) return s.error();
  return w;
}

Status HdrLogWriter::append(double start_offset_s, double length_s, const Histogram& h) {
  return file_.write(hdr_log_interval(start_offset_s, length_s, h));
}

Status HdrLogWriter::close() { return file_.close(); }

}  // namespace eco::bench
