// apps/bench/process_usage.h — what a process has spent: CPU, context
// switches, peak RSS, bytes written, heap in use; of this process
// (getrusage, /proc/self) or of a child (/proc/PID).
//
// Plain functions over the kernel's counters; callable from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace keel_bench {

struct Usage {
  double cpu_s = 0;  // user + system
  std::uint64_t context_switches = 0;
  long peak_rss_kb = 0;
  // Bytes this process caused to be sent to the storage layer
  // (/proc/PID/io write_bytes: the disk, not sockets or the page cache's
  // rewrites), 0 where the kernel does not count them.
  std::uint64_t disk_write_bytes = 0;
};

// This process, now.
Usage usage_of_self();
// A child, now (from /proc; its context switches are not read).
Usage usage_of(pid_t pid);

// Bytes the allocator has handed out and not taken back (glibc's count of
// bytes in use, chunk headers included): what the servers hold, unlike the
// RSS, which keeps what was freed.
std::uint64_t heap_in_use_bytes();

}  // namespace keel_bench
