// apps/bench/process_usage.cc — the kernel's counters of a process.
#include "process_usage.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace keel_bench {
namespace {

std::uint64_t disk_write_bytes(const std::string& proc) {
  std::ifstream in(proc + "/io");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("write_bytes:", 0) == 0) return std::strtoull(line.c_str() + 12, nullptr, 10);
  }
  return 0;
}

long peak_rss_kb(const std::string& proc) {
  std::ifstream in(proc + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// User + system CPU seconds, fields 14 and 15 of /proc/PID/stat.
double cpu_s(const std::string& proc) {
  std::string text;
  std::ifstream in(proc + "/stat");
  std::getline(in, text);  // one line
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n) {  // field 3 is the state
    if (n == 14 || n == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

Usage usage_of_self() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  Usage out;
  out.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
              static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  out.context_switches = static_cast<std::uint64_t>(usage.ru_nvcsw + usage.ru_nivcsw);
  out.peak_rss_kb = usage.ru_maxrss;
  out.disk_write_bytes = disk_write_bytes("/proc/self");
  return out;
}

Usage usage_of(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  Usage out;
  out.cpu_s = cpu_s(proc);
  out.peak_rss_kb = peak_rss_kb(proc);
  out.disk_write_bytes = disk_write_bytes(proc);
  return out;
}

std::uint64_t heap_in_use_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

}  // namespace keel_bench
