// The TCP transport between transports of one process on 127.0.0.1: both
// lanes, coalescing, bounds, reconnects, the handshake's refusals, hostile
// clients, idle timeouts and mutual TLS with certificates made at test time.
#include "keel/tcp_transport.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../runtime/test_cluster.h"
#include "tcp_test_util.h"
#include "transport/tcp_frame.h"

namespace keel {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RawClient;

constexpr std::uint64_t kCluster = 42;

// A transport and what it received (and logged).
struct Endpoint {
  // The transport goes first: its I/O thread delivers into `frames` until then.
  ~Endpoint() { transport.reset(); }

  std::shared_ptr<TcpTransport> transport;
  std::shared_ptr<testing::RecordingLogger> logger = std::make_shared<testing::RecordingLogger>();
  mutable std::mutex mutex;
  std::vector<std::string> frames;

  std::size_t received() const {
    std::lock_guard lock(mutex);
    return frames.size();
  }
  bool logged(const std::string& needle) const { return logger->logged(needle); }
  Server server(ServerId id) const {
    return Server{id, transport->listen_address(), Suffrage::kVoter};
  }
};

TcpTransportOptions options_for(ServerId id, std::uint64_t cluster = kCluster) {
  TcpTransportOptions o;
  o.id = id;
  o.cluster_id = cluster;
  o.listen_address = "127.0.0.1:0";
  o.backoff_initial = 10ms;
  o.backoff_max = 100ms;
  return o;
}

std::unique_ptr<Endpoint> open_endpoint(TcpTransportOptions o, bool start = true) {
  auto endpoint = std::make_unique<Endpoint>();
  Endpoint* e = endpoint.get();
  o.logger = e->logger;
  Result<std::shared_ptr<TcpTransport>> made = make_tcp_transport(std::move(o));
  if (!made.is_ok()) {
    ADD_FAILURE() << made.status().to_string();
    return nullptr;
  }
  e->transport = std::move(made).value();
  if (start) {
    Status started = e->transport->start([e](std::string frame) {
      std::lock_guard lock(e->mutex);
      e->frames.push_back(std::move(frame));
    });
    EXPECT_TRUE(started.is_ok());
  }
  return endpoint;
}

std::string frame_bytes(transport::FrameKind kind, const std::string& payload) {
  return transport::encode_frame_header(kind, payload) + payload;
}

TEST(TcpTransport, FramesArriveInOrderOnBothLanes) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 100; ++i) {
    a->transport->send(b->server(ServerId{2}), Lane::kControl, "c" + std::to_string(i));
    a->transport->send(b->server(ServerId{2}), Lane::kReplication, "r" + std::to_string(i));
  }
  ASSERT_TRUE(eventually([&] { return b->received() == 200; }));
  std::vector<int> next(2, 0);
  for (const std::string& f : b->frames) {
    const int lane = f[0] == 'c' ? 0 : 1;
    EXPECT_EQ(std::stoi(f.substr(1)), next[lane]++) << "frames of one lane arrive in order";
  }
  const TcpTransportStats sent = a->transport->stats();
  const TcpTransportStats got = b->transport->stats();
  EXPECT_EQ(sent.control.frames_sent, 100u);
  EXPECT_EQ(sent.replication.frames_sent, 100u);
  EXPECT_EQ(got.control.frames_received, 100u);
  EXPECT_EQ(got.replication.frames_received, 100u);
  EXPECT_EQ(sent.connections_made, 2u) << "one connection per lane";
  EXPECT_EQ(got.connections_accepted, 2u);
}

TEST(TcpTransport, ItsCountersReachTheMetricsSink) {
  auto sent_metrics = std::make_shared<testing::RecordingMetrics>();
  auto received_metrics = std::make_shared<testing::RecordingMetrics>();
  TcpTransportOptions a_options = options_for(ServerId{1});
  a_options.metrics = sent_metrics;
  TcpTransportOptions b_options = options_for(ServerId{2});
  b_options.metrics = received_metrics;
  auto a = open_endpoint(a_options);
  auto b = open_endpoint(b_options);
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 50; ++i) {
    a->transport->send(b->server(ServerId{2}), Lane::kReplication, "frame " + std::to_string(i));
  }
  ASSERT_TRUE(eventually([&] { return b->received() == 50; }));
  const std::string lane = "server=1,lane=replication,direction=sent}";
  EXPECT_TRUE(eventually(
      [&] { return sent_metrics->counter("keel_transport_frames_total{" + lane) == 50; }));
  // Frames and bytes are two calls of one report: wait for the second too.
  EXPECT_TRUE(eventually(
      [&] { return sent_metrics->counter("keel_transport_bytes_total{" + lane) >= 50u * 7; }));
  EXPECT_TRUE(eventually([&] {
    return received_metrics->counter(
               "keel_transport_frames_total{server=2,lane=replication,direction=received}") == 50;
  }));
}

TEST(TcpTransport, AReceiverStartedOnAnIoExecutorRunsOnTheIoThreadThatReadsTheFrames) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}), /*start=*/false);
  ASSERT_TRUE(a && b);
  auto loop = b->transport->make_io_executor("loop");
  ASSERT_NE(loop, nullptr);
  std::mutex mutex;
  std::vector<std::thread::id> threads;
  ASSERT_TRUE(b->transport
                  ->start(
                      [&](std::string /*frame*/) {
                        std::lock_guard lock(mutex);
                        threads.push_back(std::this_thread::get_id());
                      },
                      loop)
                  .is_ok());
  constexpr std::size_t kFrames = 50;
  for (std::size_t i = 0; i < kFrames; ++i) {
    a->transport->send(b->server(ServerId{2}), i % 2 ? Lane::kControl : Lane::kReplication, "f");
  }
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return threads.size() == kFrames;
  }));
  Promise<std::thread::id> io_thread;
  loop->post([io_thread] { (void)io_thread.resolve(std::this_thread::get_id()); });
  Result<std::thread::id> io_id = io_thread.future().get();
  ASSERT_TRUE(io_id.is_ok());
  b->transport->stop();  // not under `mutex`: the receiver takes it inside the gate's call
  std::lock_guard lock(mutex);
  for (const std::thread::id& thread : threads) EXPECT_EQ(thread, io_id.value());
}

TEST(TcpTransport, TheLastReferenceMayGoOnItsOwnIoThread) {
  auto logger = std::make_shared<testing::RecordingLogger>();
  std::weak_ptr<testing::RecordingLogger> logger_alive = logger;
  TcpTransportOptions o = options_for(ServerId{1});
  o.logger = std::move(logger);
  std::shared_ptr<TcpTransport> transport = make_tcp_transport(std::move(o)).value();
  auto executor = transport->make_io_executor("last");
  Promise<bool> ran;
  // The task holds the only reference and drops it, on the I/O thread:
  // the destructor, which joins that thread, must run elsewhere.
  executor->post([held = std::move(transport), ran]() mutable {
    held.reset();
    (void)ran.resolve(true);
  });
  ASSERT_TRUE(ran.future().wait_for(30s));
  EXPECT_TRUE(eventually([&] { return logger_alive.expired(); }))
      << "the transport (which holds its logger) was never destroyed";
  std::atomic<int> after{0};
  executor->post([&after] { after.fetch_add(1); });
  executor->stop();
  EXPECT_EQ(after.load(), 0);
}

TEST(TcpTransport, FramesQueuedDuringAWriteGoOutTogether) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  const Server to = b->server(ServerId{2});
  const std::string payload(256, 'p');
  constexpr std::size_t kFrames = 20'000;
  for (std::size_t i = 0; i < kFrames; ++i) a->transport->send(to, Lane::kReplication, payload);
  ASSERT_TRUE(eventually([&] { return b->received() == kFrames; }, 30s));
  const TcpTransportStats stats = a->transport->stats();
  EXPECT_EQ(stats.replication.frames_sent, kFrames);
  EXPECT_EQ(stats.replication.bytes_sent,
            kFrames * (payload.size() + transport::kFrameHeaderBytes));
  // Sends outpace one write per frame: writes gather what queued meanwhile.
  EXPECT_LT(stats.writes, kFrames / 2) << "writes " << stats.writes;
}

TEST(TcpTransport, LargeFramesCrossWholeAndTheReadBufferShrinksBack) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  std::string big(8 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  // First while the connection is being dialled (queued), then on an idle
  // connection, where send() writes itself and the socket takes only part
  // of 8 MiB: the rest, and the frames behind it, must follow in order.
  for (int round = 0; round < 2; ++round) {
    a->transport->send(b->server(ServerId{2}), Lane::kReplication, big);
    a->transport->send(b->server(ServerId{2}), Lane::kReplication, "after");
    a->transport->send(b->server(ServerId{2}), Lane::kReplication, "and after");
    ASSERT_TRUE(eventually([&] { return b->received() == 3u * (round + 1); }, 30s));
    std::lock_guard lock(b->mutex);
    EXPECT_EQ(b->frames[3 * round], big);
    EXPECT_EQ(b->frames[3 * round + 1], "after");
    EXPECT_EQ(b->frames[3 * round + 2], "and after");
  }
  EXPECT_EQ(a->transport->stats().replication.bytes_sent,
            2 * (big.size() + 5 + 9 + 3 * transport::kFrameHeaderBytes));
}

TEST(TcpTransport, ConcurrentSendersEachKeepTheirOrder) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  const Server to = b->server(ServerId{2});
  // Direct writes from the senders' threads and gathered writes from the I/O
  // thread interleave; every frame must arrive whole and in each sender's order.
  constexpr int kThreads = 4;
  constexpr int kFrames = 5000;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kFrames; ++i) {
        std::string frame = std::to_string(t) + ":" + std::to_string(i) + ":";
        frame.resize(frame.size() + static_cast<std::size_t>(i % 700), static_cast<char>('a' + t));
        a->transport->send(to, Lane::kReplication, std::move(frame));
        if (i % 500 == 0) std::this_thread::yield();
      }
    });
  }
  for (auto& s : senders) s.join();
  ASSERT_TRUE(eventually([&] { return b->received() == kThreads * kFrames; }, 30s))
      << b->received() << " dropped " << a->transport->stats().replication.frames_dropped;
  std::vector<int> next(kThreads, 0);
  std::lock_guard lock(b->mutex);
  for (const std::string& f : b->frames) {
    const int t = std::stoi(f.substr(0, f.find(':')));
    const int i = std::stoi(f.substr(f.find(':') + 1));
    ASSERT_EQ(i, next[t]++);
    const std::size_t body = f.size() - f.find(':', f.find(':') + 1) - 1;
    ASSERT_EQ(body, static_cast<std::size_t>(i % 700));
  }
}

TEST(TcpTransport, AFrameLargerThanTheBoundIsDroppedOnSend) {
  TcpTransportOptions o = options_for(ServerId{1});
  o.max_frame_bytes = 4096;
  o.max_queued_bytes = 4096;
  o.read_buffer_bytes = 4096;
  auto a = open_endpoint(o);
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  a->transport->send(b->server(ServerId{2}), Lane::kReplication, std::string(5000, 'x'));
  a->transport->send(b->server(ServerId{2}), Lane::kReplication, "small");
  ASSERT_TRUE(eventually([&] { return b->received() == 1; }));
  EXPECT_EQ(b->frames[0], "small");
  EXPECT_EQ(a->transport->stats().replication.frames_dropped, 1u);
  EXPECT_TRUE(a->logged("larger than max_frame_bytes"));
}

// A listening socket that accepts nothing: dials to it connect (the kernel's
// backlog) but never complete a handshake.
class SilentListener {
 public:
  SilentListener() { fd_ = testing::listen_on_loopback(16, address_); }
  ~SilentListener() { ::close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// A listener that accepts one connection, answers its hello as a keel peer
// would, and then either closes it or leaves it unread.
class FakePeer {
 public:
  explicit FakePeer(bool close_after_handshake) {
    listener_ = testing::listen_on_loopback(4, address_);
    thread_ = std::thread([this, close_after_handshake] {
      connection_ = ::accept(listener_, nullptr, nullptr);
      if (connection_ < 0) return;
      char hello[transport::kHelloBytes];
      std::size_t got = 0;
      while (got < sizeof hello) {
        const ssize_t n = ::read(connection_, hello + got, sizeof hello - got);
        if (n <= 0) return;
        got += static_cast<std::size_t>(n);
      }
      const std::string answer = transport::encode_answer(transport::HandshakeCode::kAccepted);
      if (::write(connection_, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size()))
        return;
      if (close_after_handshake) {
        ::close(connection_);
        connection_ = -1;
      }
    });
  }
  ~FakePeer() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    if (connection_ >= 0) ::close(connection_);
    ::close(listener_);
  }
  Server server() const { return Server{ServerId{2}, address_, Suffrage::kVoter}; }

 private:
  int listener_ = -1;
  int connection_ = -1;
  std::string address_;
  std::thread thread_;
};

TEST(TcpTransport, AWriteThatStallsFailsAfterWriteTimeout) {
  FakePeer unread(/*close_after_handshake=*/false);
  TcpTransportOptions o = options_for(ServerId{1});
  o.write_timeout = 300ms;
  auto a = open_endpoint(o);
  ASSERT_TRUE(a);
  // Far more than the kernel's socket buffers hold: the write stalls.
  const std::string chunk(1 << 20, 'w');
  for (int i = 0; i < 48; ++i) a->transport->send(unread.server(), Lane::kReplication, chunk);
  ASSERT_TRUE(
      eventually([&] { return a->logged("write made no progress within write_timeout"); }, 20s));
  // The stalled batch is lost with the connection, and counted.
  EXPECT_TRUE(eventually([&] { return a->transport->stats().replication.frames_dropped > 0; }));
}

TEST(TcpTransport, APeerThatClosesIsNoticedWithoutAWrite) {
  FakePeer closing(/*close_after_handshake=*/true);
  auto a = open_endpoint(options_for(ServerId{1}));
  ASSERT_TRUE(a);
  a->transport->send(closing.server(), Lane::kControl, "hello");
  ASSERT_TRUE(eventually([&] { return a->logged("closed the connection"); }));
  EXPECT_EQ(a->transport->stats().connections_made, 1u);
}

TEST(TcpTransport, QueueBeyondItsBoundDropsAndCountsAndAStuckHandshakeTimesOut) {
  SilentListener silent;
  TcpTransportOptions o = options_for(ServerId{1});
  o.max_frame_bytes = 4096;
  o.max_queued_bytes = 4096;
  o.read_buffer_bytes = 4096;
  o.connect_timeout = 200ms;
  auto a = open_endpoint(o);
  ASSERT_TRUE(a);
  const Server to{ServerId{2}, silent.address(), Suffrage::kVoter};
  for (int i = 0; i < 10; ++i) a->transport->send(to, Lane::kReplication, std::string(1000, 'q'));
  // Four fit while the dial waits for an answer; the rest are dropped.
  EXPECT_GE(a->transport->stats().replication.frames_dropped, 6u);
  ASSERT_TRUE(eventually([&] { return a->transport->stats().connections_failed >= 1; }));
  EXPECT_TRUE(a->logged("connect_timeout"));
  EXPECT_EQ(a->transport->stats().connections_made, 0u);
}

TEST(TcpTransport, PeerOfAnotherClusterIsRefusedAndDeliversNothing) {
  auto b = open_endpoint(options_for(ServerId{2}));
  auto stranger = open_endpoint(options_for(ServerId{1}, /*cluster=*/7));
  ASSERT_TRUE(b && stranger);
  stranger->transport->send(b->server(ServerId{2}), Lane::kControl, "from another cluster");
  ASSERT_TRUE(eventually([&] { return b->transport->stats().rejected_wrong_cluster >= 1; }));
  ASSERT_TRUE(
      eventually([&] { return stranger->logged("refused the connection: wrong cluster id"); }));
  EXPECT_TRUE(b->logged("cluster id 7 (this cluster is 42)"));
  EXPECT_EQ(b->received(), 0u);
  EXPECT_EQ(b->transport->stats().connections_accepted, 0u);
}

TEST(TcpTransport, HelloForAnotherServerIsRefused) {
  auto b = open_endpoint(options_for(ServerId{2}));
  auto a = open_endpoint(options_for(ServerId{1}));
  ASSERT_TRUE(a && b);
  // b's address, but addressed to server 3.
  a->transport->send(Server{ServerId{3}, b->transport->listen_address(), Suffrage::kVoter},
                     Lane::kControl, "misrouted");
  ASSERT_TRUE(eventually([&] { return a->logged("addressed to another server"); }));
  EXPECT_EQ(b->received(), 0u);
}

// Opens a raw connection to `e` and completes a valid handshake as server 1.
std::unique_ptr<RawClient> handshaken_client(
    const Endpoint& e, std::uint16_t version = transport::kTcpProtocolVersion) {
  auto client = std::make_unique<RawClient>(e.transport->listen_address());
  if (!client->connected()) return nullptr;
  client->send(transport::encode_hello({version, Lane::kReplication, kCluster, 1, 2}));
  return client;
}

TEST(TcpTransport, HostileInputClosesThatConnectionOnlyAndNothingIsDelivered) {
  TcpTransportOptions o = options_for(ServerId{2});
  o.max_frame_bytes = 64 << 10;
  auto b = open_endpoint(o);
  ASSERT_TRUE(b);

  {  // An HTTP client.
    RawClient http(b->transport->listen_address());
    ASSERT_TRUE(http.connected());
    http.send("GET /v1/kv/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
    EXPECT_TRUE(http.closed_by_peer());
  }
  {  // Random bytes.
    RawClient noise(b->transport->listen_address());
    std::string bytes(4096, '\0');
    std::mt19937 random(7);
    for (char& c : bytes) c = static_cast<char>(random());
    noise.send(bytes);
    EXPECT_TRUE(noise.closed_by_peer());
  }
  {  // Another protocol version: answered with the reason, then closed.
    auto client = handshaken_client(*b, transport::kTcpProtocolVersion + 1);
    ASSERT_TRUE(client);
    Result<transport::HandshakeCode> answer =
        transport::decode_answer(client->receive(transport::kAnswerBytes));
    ASSERT_TRUE(answer.is_ok());
    EXPECT_EQ(*answer, transport::HandshakeCode::kUnsupportedVersion);
    EXPECT_TRUE(client->closed_by_peer());
  }
  const std::string good = frame_bytes(transport::FrameKind::kMessage, "good frame");
  std::string bad_checksum = frame_bytes(transport::FrameKind::kMessage, "tampered");
  bad_checksum.back() ^= 1;
  std::string unknown_kind = frame_bytes(transport::FrameKind::kMessage, "kind");
  unknown_kind[4] = 9;
  const std::string oversized =
      transport::encode_frame_header(transport::FrameKind::kMessage, std::string(70000, 'o'));
  struct Case {
    const char* name;
    std::string bytes;
    bool closes;
  };
  const std::vector<Case> cases = {
      {"bad checksum", bad_checksum, true},
      {"unknown kind", unknown_kind, true},
      {"oversized length", oversized, true},
      {"truncated frame, then hang-up", good.substr(0, good.size() - 3), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto client = handshaken_client(*b);
    ASSERT_TRUE(client);
    ASSERT_EQ(client->receive(transport::kAnswerBytes).size(), transport::kAnswerBytes);
    client->send(c.bytes);
    if (c.closes) {
      EXPECT_TRUE(client->closed_by_peer());
    }
  }
  // The last client's hang-up is seen by the server's I/O thread in its own time.
  EXPECT_TRUE(eventually([&] {
    const TcpTransportStats s = b->transport->stats();
    return s.rejected_malformed_frame >= 3 && s.rejected_oversized_frame >= 1 &&
           s.rejected_bad_handshake >= 3;
  })) << "bad checksum, unknown kind and a hang-up inside a frame; an oversized length; "
         "HTTP, random bytes and another version";
  EXPECT_EQ(b->received(), 0u) << "nothing from a hostile connection reaches the receiver";
  EXPECT_TRUE(b->logged("bad magic"));
  EXPECT_TRUE(b->logged("checksum mismatch"));

  // The server is still up: a real peer gets through.
  auto a = open_endpoint(options_for(ServerId{1}));
  a->transport->send(b->server(ServerId{2}), Lane::kControl, "still listening");
  ASSERT_TRUE(eventually([&] { return b->received() == 1; }));
}

TEST(TcpTransport, FramesBeforeAHandshakeAreNeverDelivered) {
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(b);
  RawClient client(b->transport->listen_address());
  // A well-formed frame, but no hello before it: taken as a (bad) hello.
  std::string frames;
  for (int i = 0; i < 10; ++i) frames += frame_bytes(transport::FrameKind::kMessage, "sneaky");
  client.send(frames);
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(b->received(), 0u);
}

TEST(TcpTransport, SilentConnectionsTimeOutWhileKeepalivesHoldIdleOnesOpen) {
  TcpTransportOptions o = options_for(ServerId{2});
  o.idle_timeout = 150ms;
  auto b = open_endpoint(o);
  TcpTransportOptions ao = options_for(ServerId{1});
  ao.idle_timeout = 150ms;
  auto a = open_endpoint(ao);
  ASSERT_TRUE(a && b);
  auto silent = handshaken_client(*b);
  ASSERT_TRUE(silent);
  a->transport->send(b->server(ServerId{2}), Lane::kControl, "one");
  EXPECT_TRUE(silent->closed_by_peer(5s)) << "a handshaken connection that sends nothing is closed";
  ASSERT_TRUE(eventually([&] { return b->logged("sent nothing within idle_timeout"); }));
  // The transport's own connection stayed up on keepalives: after many idle
  // timeouts one more frame arrives without a new connection.
  ASSERT_TRUE(eventually([&] { return b->received() == 1; }));
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);  // ~7 idle timeouts
  a->transport->send(b->server(ServerId{2}), Lane::kControl, "two");
  ASSERT_TRUE(eventually([&] { return b->received() == 2; }));
  EXPECT_EQ(a->transport->stats().connections_made, 1u);
}

TEST(TcpTransport, ReconnectsToAPeerThatRestartsOnTheSamePort) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  const Server to = b->server(ServerId{2});
  a->transport->send(to, Lane::kControl, "before");
  ASSERT_TRUE(eventually([&] { return b->received() == 1; }));
  b.reset();
  TcpTransportOptions o = options_for(ServerId{2});
  o.listen_address = to.address;
  auto b2 = open_endpoint(o);
  ASSERT_TRUE(b2);
  // Frames sent into the broken connection may be lost; Raft resends, and
  // so does this loop, until one gets through the new connection.
  ASSERT_TRUE(eventually([&] {
    a->transport->send(to, Lane::kControl, "after");
    return b2->received() >= 1;
  }));
  EXPECT_EQ(b2->frames[0], "after");
  EXPECT_GE(a->transport->stats().connections_made, 2u);
}

TEST(TcpTransport, NothingIsDeliveredAfterStopAndStartResumes) {
  auto a = open_endpoint(options_for(ServerId{1}));
  auto b = open_endpoint(options_for(ServerId{2}));
  ASSERT_TRUE(a && b);
  a->transport->send(b->server(ServerId{2}), Lane::kControl, "1");
  ASSERT_TRUE(eventually([&] { return b->received() == 1; }));
  b->transport->stop();
  for (int i = 0; i < 50; ++i) a->transport->send(b->server(ServerId{2}), Lane::kControl, "x");
  Endpoint* e = b.get();
  ASSERT_TRUE(b->transport
                  ->start([e](std::string frame) {
                    std::lock_guard lock(e->mutex);
                    e->frames.push_back("restarted:" + frame);
                  })
                  .is_ok());
  ASSERT_TRUE(eventually([&] {
    a->transport->send(b->server(ServerId{2}), Lane::kControl, "2");
    std::lock_guard lock(e->mutex);
    return !e->frames.empty() && e->frames.back() == "restarted:2";
  }));
  std::lock_guard lock(e->mutex);
  for (std::size_t i = 1; i < e->frames.size(); ++i) {
    EXPECT_EQ(e->frames[i].rfind("restarted:", 0), 0u)
        << "no frame reached the receiver while stopped";
  }
}

TEST(TcpTransport, BadOptionsAreRefusedWithTheFieldNamed) {
  auto refused = [](TcpTransportOptions o, const std::string& needle) {
    Result<std::shared_ptr<TcpTransport>> made = make_tcp_transport(std::move(o));
    EXPECT_FALSE(made.is_ok()) << needle;
    if (!made.is_ok()) {
      EXPECT_NE(made.status().message().find(needle), std::string::npos)
          << made.status().to_string();
    }
  };
  TcpTransportOptions o = options_for(ServerId{1});
  o.cluster_id = 0;
  refused(o, "cluster_id");
  o = options_for(ServerId{1});
  o.listen_address = "127.0.0.1";
  refused(o, "no port");
  o = options_for(ServerId{1});
  o.max_queued_bytes = o.max_frame_bytes - 1;
  refused(o, "max_queued_bytes");
  o = options_for(ServerId{1});
  o.backoff_max = 1ms;
  refused(o, "backoff_max");
  o = options_for(ServerId{1});
  o.outgoing_address = "not-an-ip";
  refused(o, "outgoing_address");
  o = options_for(ServerId{1});
  o.tls = TcpTlsOptions{"/nonexistent/cert.pem", "/nonexistent/key.pem", "/nonexistent/ca.pem"};
  refused(o, "certificate_file");

  auto first = open_endpoint(options_for(ServerId{1}));
  ASSERT_TRUE(first);
  o = options_for(ServerId{2});
  o.listen_address = first->transport->listen_address();
  Result<std::shared_ptr<TcpTransport>> taken = make_tcp_transport(o);
  ASSERT_FALSE(taken.is_ok());
  EXPECT_EQ(taken.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(taken.status().message().find("cannot listen"), std::string::npos);
}

TEST(TcpTransport, OutgoingConnectionsComeFromTheBoundAddress) {
  auto b = open_endpoint(options_for(ServerId{2}));
  TcpTransportOptions o = options_for(ServerId{1});
  o.outgoing_address = "127.0.0.7";
  auto a = open_endpoint(o);
  ASSERT_TRUE(a && b);
  // b refuses a hello for another server and logs the dialler's address.
  a->transport->send(Server{ServerId{9}, b->transport->listen_address(), Suffrage::kVoter},
                     Lane::kControl, "x");
  ASSERT_TRUE(eventually([&] { return b->logged("from 127.0.0.7:"); }));
}

// --- mutual TLS ----------------------------------------------------------------------

class TcpTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_ca_.ok() && other_ca_.ok()) << "the openssl command is needed";
    ASSERT_TRUE(cluster_ca_.issue("server1", "keel-1"));
    ASSERT_TRUE(cluster_ca_.issue("server2", "keel-2"));
    ASSERT_TRUE(cluster_ca_.issue("impostor", "keel-3"));
    ASSERT_TRUE(other_ca_.issue("outsider", "keel-1"));
  }
  // Server `id` with the certificate `files` that `ca` issued; every server
  // trusts the cluster's CA.
  TcpTransportOptions tls_options(ServerId id, const std::string& files, const testing::TestPki& ca,
                                  bool verify_names = false) {
    TcpTransportOptions o = options_for(id);
    o.tls = TcpTlsOptions{ca.file(files + ".crt"), ca.file(files + ".key"), cluster_ca_.ca_file(),
                          verify_names};
    return o;
  }
  testing::TempDir dir_;
  testing::TestPki cluster_ca_{dir_.path(), "cluster-ca"};
  testing::TestPki other_ca_{dir_.path(), "other-ca"};
};

TEST_F(TcpTls, PeersWithCertificatesOfTheClusterCaTalk) {
  auto a = open_endpoint(tls_options(ServerId{1}, "server1", cluster_ca_, true));
  auto b = open_endpoint(tls_options(ServerId{2}, "server2", cluster_ca_, true));
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 100; ++i)
    a->transport->send(b->server(ServerId{2}), Lane::kReplication, std::string(1000, 'z'));
  ASSERT_TRUE(eventually([&] { return b->received() == 100; }));
  EXPECT_EQ(b->frames[99], std::string(1000, 'z'));
}

TEST_F(TcpTls, CertificateOfAnotherCaIsRefused) {
  auto b = open_endpoint(tls_options(ServerId{2}, "server2", cluster_ca_));
  auto outsider = open_endpoint(tls_options(ServerId{1}, "outsider", other_ca_));
  ASSERT_TRUE(b && outsider);
  outsider->transport->send(b->server(ServerId{2}), Lane::kControl, "let me in");
  ASSERT_TRUE(eventually([&] { return b->logged("TLS handshake failed"); }));
  EXPECT_GE(b->transport->stats().connections_refused, 1u);
  EXPECT_EQ(b->received(), 0u);
}

TEST_F(TcpTls, PlainTcpClientOfATlsServerIsRefused) {
  auto b = open_endpoint(tls_options(ServerId{2}, "server2", cluster_ca_));
  auto plain = open_endpoint(options_for(ServerId{1}));
  ASSERT_TRUE(b && plain);
  plain->transport->send(b->server(ServerId{2}), Lane::kControl, "no certificate");
  ASSERT_TRUE(eventually([&] { return b->logged("TLS handshake failed"); }));
  EXPECT_EQ(b->received(), 0u);
  EXPECT_EQ(plain->transport->stats().connections_made, 0u);
}

TEST_F(TcpTls, WithNameChecksACertificateMustNameTheServerItClaims) {
  auto b = open_endpoint(tls_options(ServerId{2}, "server2", cluster_ca_, true));
  // Signed by the cluster's CA, but for keel-3, claiming to be server 1.
  auto impostor = open_endpoint(tls_options(ServerId{1}, "impostor", cluster_ca_, true));
  ASSERT_TRUE(b && impostor);
  impostor->transport->send(b->server(ServerId{2}), Lane::kControl, "I am server 1");
  ASSERT_TRUE(eventually([&] { return b->logged("does not name 'keel-1'"); }));
  EXPECT_EQ(b->received(), 0u);
}

}  // namespace
}  // namespace keel
