// keel-transport-bench: what the TCP transport costs (BENCHMARKS.md,
// "Transport"). A plain program; every figure comes from one run, so ratios
// printed side by side were measured on the same machine at the same time.
//
//   codec:   encode + decode of an append of 64 entries of 256 bytes (MB/s,
//            messages/s), and frame header + parse over a stream of 256-byte
//            frames (MB/s, frames/s).
//   rtt:     a 64-byte frame from one TcpTransport to another and back, one
//            at a time (median and p99 in µs), next to a bare blocking TCP
//            socket ping-pong of 64 bytes on the same loopback.
//   stream:  256-byte frames one way as fast as send() accepts them (frames/s
//            and frames per gathering write).
//
// Usage: keel-transport-bench [--rtt-rounds N] [--frames N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/codec.h"
#include "keel/tcp_transport.h"
#include "transport/tcp_frame.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void bench_codec() {
  keel::core::Message append;
  append.type = keel::core::MessageType::kAppendRequest;
  append.from = keel::ServerId{1};
  append.to = keel::ServerId{2};
  append.term = keel::Term{5};
  append.prev_log_index = keel::Index{1000};
  append.prev_log_term = keel::Term{5};
  append.commit = keel::Index{990};
  for (int i = 0; i < 64; ++i) {
    keel::LogEntry entry;
    entry.index = keel::Index{1001ULL + static_cast<unsigned>(i)};
    entry.term = keel::Term{5};
    entry.data = std::string(256, 'e');
    append.entries.push_back(entry);
  }
  const std::size_t frame_bytes = keel::core::encode(append).size();
  constexpr int kRounds = 20000;
  auto start = Clock::now();
  std::size_t check = 0;
  for (int i = 0; i < kRounds; ++i) {
    const std::string bytes = keel::core::encode(append);
    auto decoded = keel::core::decode(bytes);
    check += decoded.is_ok() ? decoded->entries.size() : 0;
  }
  double s = seconds_since(start);
  std::printf(
      "codec    append of 64 x 256 B (%zu B): encode+decode %.0f MB/s, %.0f messages/s (check "
      "%zu)\n",
      frame_bytes, kRounds * static_cast<double>(frame_bytes) / s / 1e6, kRounds / s, check);

  const std::string payload(256, 'p');
  std::string stream;
  constexpr int kFrames = 200000;
  start = Clock::now();
  for (int i = 0; i < kFrames; ++i) {
    stream += keel::transport::encode_frame_header(keel::transport::FrameKind::kMessage, payload);
    stream += payload;
  }
  const double encode_s = seconds_since(start);
  start = Clock::now();
  std::string_view rest = stream;
  int parsed = 0;
  for (;;) {
    auto frame = keel::transport::parse_frame(rest, 1 << 20);
    if (frame.outcome != keel::transport::ParsedFrame::Outcome::kFrame) break;
    rest.remove_prefix(frame.consumed);
    ++parsed;
  }
  const double parse_s = seconds_since(start);
  std::printf(
      "framing  256 B frames: header %.0f MB/s (%.1f M frames/s), parse %.0f MB/s (%.1f M "
      "frames/s), %d parsed\n",
      stream.size() / encode_s / 1e6, kFrames / encode_s / 1e6, stream.size() / parse_s / 1e6,
      parsed / parse_s / 1e6, parsed);
}

std::shared_ptr<keel::TcpTransport> transport(std::uint64_t id, bool inline_writes = true) {
  keel::TcpTransportOptions o;
  o.inline_writes = inline_writes;
  o.id = keel::ServerId{id};
  o.cluster_id = 1;
  o.listen_address = "127.0.0.1:0";
  o.max_queued_bytes = 256ULL << 20;
  auto made = keel::make_tcp_transport(o);
  if (!made.is_ok()) {
    std::fprintf(stderr, "%s\n", made.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(made).value();
}

struct Percentiles {
  double p50, p99;
};
Percentiles percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

Percentiles transport_rtt(int rounds, bool inline_writes) {
  auto a = transport(1, inline_writes);
  auto b = transport(2, inline_writes);
  const keel::Server to_b{keel::ServerId{2}, b->listen_address(), keel::Suffrage::kVoter};
  const keel::Server to_a{keel::ServerId{1}, a->listen_address(), keel::Suffrage::kVoter};
  std::mutex mutex;
  std::condition_variable cv;
  std::uint64_t returned = 0;
  (void)b->start([&](std::string frame) { b->send(to_a, keel::Lane::kControl, std::move(frame)); });
  (void)a->start([&](std::string) {
    std::lock_guard lock(mutex);
    ++returned;
    cv.notify_one();
  });
  const std::string ping(64, 'p');
  std::vector<double> us;
  for (int i = 0; i < rounds + 100; ++i) {
    const auto start = Clock::now();
    a->send(to_b, keel::Lane::kControl, ping);
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return returned == static_cast<std::uint64_t>(i + 1); });
    if (i >= 100) us.push_back(seconds_since(start) * 1e6);  // the first ones dial
  }
  a->stop();
  b->stop();
  return percentiles(us);
}

void bench_rtt(int rounds) {
  const Percentiles with_inline = transport_rtt(rounds, true);
  const Percentiles queued = transport_rtt(rounds, false);
  // The same exchange over a bare blocking socket pair on loopback.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listener, 1);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int server = ::accept(listener, nullptr, nullptr);
  const int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto exchange = [](int fd, char* buffer, bool send_first) {
    auto full_read = [&] {
      std::size_t got = 0;
      while (got < 64) {
        const ssize_t n = ::read(fd, buffer + got, 64 - got);
        if (n <= 0) return false;
        got += static_cast<std::size_t>(n);
      }
      return true;
    };
    if (send_first) return ::write(fd, buffer, 64) == 64 && full_read();
    return full_read() && ::write(fd, buffer, 64) == 64;
  };
  std::thread echo([&] {
    char buffer[64];
    for (int i = 0; i < rounds + 100; ++i) {
      if (!exchange(server, buffer, false)) return;
    }
  });
  std::vector<double> us;
  char buffer[64] = {};
  for (int i = 0; i < rounds + 100; ++i) {
    const auto start = Clock::now();
    if (!exchange(client, buffer, true)) break;
    if (i >= 100) us.push_back(seconds_since(start) * 1e6);
  }
  echo.join();
  ::close(client);
  ::close(server);
  ::close(listener);
  const Percentiles bare = percentiles(us);
  std::printf(
      "rtt      64 B frame there and back, %d rounds, p50 / p99 in us: transport %.1f / %.1f, "
      "transport without inline writes %.1f / %.1f, bare socket %.1f / %.1f "
      "(p50 ratios to bare: %.2f and %.2f)\n",
      rounds, with_inline.p50, with_inline.p99, queued.p50, queued.p99, bare.p50, bare.p99,
      with_inline.p50 / bare.p50, queued.p50 / bare.p50);
}

void bench_stream(std::uint64_t frames) {
  auto a = transport(1);
  auto b = transport(2);
  const keel::Server to_b{keel::ServerId{2}, b->listen_address(), keel::Suffrage::kVoter};
  std::atomic<std::uint64_t> received{0};
  (void)b->start([&](std::string) { received.fetch_add(1, std::memory_order_relaxed); });
  const std::string payload(256, 'x');
  // Keep at most this many frames in flight, well inside the queue's bound.
  constexpr std::uint64_t kWindow = 100000;
  const auto start = Clock::now();
  for (std::uint64_t sent = 0; sent < frames; ++sent) {
    while (sent - received.load(std::memory_order_relaxed) >= kWindow) std::this_thread::yield();
    a->send(to_b, keel::Lane::kReplication, payload);
  }
  while (received.load() < frames && seconds_since(start) < 120) std::this_thread::sleep_for(100us);
  const double s = seconds_since(start);
  const keel::TcpTransportStats stats = a->stats();
  std::printf(
      "stream   %llu frames of 256 B one way: %.0f frames/s, %.0f MB/s, %.1f frames per write, "
      "%llu dropped\n",
      static_cast<unsigned long long>(received.load()), received.load() / s,
      received.load() * (256.0 + keel::transport::kFrameHeaderBytes) / s / 1e6,
      static_cast<double>(stats.replication.frames_sent) / std::max<std::uint64_t>(stats.writes, 1),
      static_cast<unsigned long long>(stats.replication.frames_dropped));
}

}  // namespace

int main(int argc, char** argv) {
  int rtt_rounds = 20000;
  std::uint64_t frames = 2'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rtt-rounds") == 0) {
      rtt_rounds = std::max(1, std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--frames") == 0) {
      frames = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: keel-transport-bench [--rtt-rounds N] [--frames N]\n");
      return 2;
    }
  }
  bench_codec();
  bench_rtt(rtt_rounds);
  bench_stream(frames);
  return 0;
}
