// apps/bench/floor.cc — fdatasync and a loopback round trip, measured.
#include "floor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "data_dir.h"
#include "histogram.h"

namespace keel_bench {
namespace {

using Clock = std::chrono::steady_clock;

// One fdatasync of a 4 KiB append, `samples` times, in a file of `dir`.
bool measure_fsync(const std::filesystem::path& dir, std::size_t samples, Histogram& out) {
  const std::filesystem::path file = dir / "floor.dat";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
  if (fd < 0) {
    std::cerr << "keel-bench floor: " << file.string() << ": " << std::strerror(errno) << "\n";
    return false;
  }
  const std::string block(4096, 'f');
  bool ok = true;
  for (std::size_t i = 0; i < samples && ok; ++i) {
    const auto started = Clock::now();
    ok = ::write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()) &&
         ::fdatasync(fd) == 0;
    out.record(Clock::now() - started);
  }
  if (!ok) std::cerr << "keel-bench floor: write or fdatasync: " << std::strerror(errno) << "\n";
  ::close(fd);
  std::filesystem::remove(file);
  return ok;
}

// One byte there and back over a loopback TCP connection (TCP_NODELAY on
// both ends, a thread echoing), `samples` times.
bool measure_round_trip(std::size_t samples, Histogram& out) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::cerr << "keel-bench floor: loopback listener: " << std::strerror(errno) << "\n";
    if (listener >= 0) ::close(listener);
    return false;
  }
  const int one = 1;
  std::thread echo([&] {
    const int peer = ::accept(listener, nullptr, nullptr);
    if (peer < 0) return;
    ::setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char byte = 0;
    while (::read(peer, &byte, 1) == 1 && ::write(peer, &byte, 1) == 1) {
    }
    ::close(peer);
  });
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  bool ok =
      client >= 0 && ::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  if (ok) ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char byte = 'r';
  for (std::size_t i = 0; i < samples + samples / 10 && ok; ++i) {
    const auto started = Clock::now();
    ok = ::write(client, &byte, 1) == 1 && ::read(client, &byte, 1) == 1;
    if (i >= samples / 10) out.record(Clock::now() - started);  // the first tenth warms up
  }
  if (!ok) std::cerr << "keel-bench floor: loopback round trip: " << std::strerror(errno) << "\n";
  if (client >= 0) ::close(client);  // ends the echo thread's read
  ::shutdown(listener, SHUT_RDWR);
  echo.join();
  ::close(listener);
  return ok;
}

}  // namespace

int run_floor(const Options& options) {
  auto dir = DataDir::make(options.dir);
  if (!dir) return 2;
  Histogram fsync;
  Histogram round_trip;
  if (!measure_fsync(dir->path(), options.samples, fsync)) return 1;
  if (!measure_round_trip(options.samples, round_trip)) return 1;
  const double fsync_p50 = fsync.percentile_us(0.5);
  const double rtt_p50 = round_trip.percentile_us(0.5);
  if (options.json) {
    std::printf(
        "{\"floor_us\": %.1f, \"fdatasync_4k_us\": {\"p50\": %.1f, \"p99\": %.1f}, "
        "\"tcp_round_trip_us\": {\"p50\": %.1f, \"p99\": %.1f}, \"samples\": %zu, "
        "\"dir\": \"%s\"}\n",
        fsync_p50 + rtt_p50, fsync_p50, fsync.percentile_us(0.99), rtt_p50,
        round_trip.percentile_us(0.99), options.samples, dir->path().c_str());
    return 0;
  }
  std::printf("keel-bench floor (%zu samples each, files in %s)\n", options.samples,
              dir->path().c_str());
  std::printf("  fdatasync of a 4 KiB append: p50 %.1f us  p99 %.1f us\n", fsync_p50,
              fsync.percentile_us(0.99));
  std::printf("  loopback TCP round trip:     p50 %.1f us  p99 %.1f us\n", rtt_p50,
              round_trip.percentile_us(0.99));
  std::printf("  floor (one of each):         %.1f us\n", fsync_p50 + rtt_p50);
  return 0;
}

}  // namespace keel_bench
