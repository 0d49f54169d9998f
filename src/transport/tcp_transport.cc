// TcpTransport (keel/tcp_transport.h): keel's frames over TCP on standalone
// Asio, optionally inside TLS. The only file with OpenSSL headers; the I/O
// thread that runs the sockets is transport/io_thread.h's.
//
// Objects (all driven by the one I/O thread unless said otherwise):
//   Outbound  one per (peer, lane): the queue send() fills (under its mutex,
//             from any thread), the dialled connection, its handshake, the
//             gathering writes, the backoff after a failure.
//   Inbound   one per accepted connection: TLS and hello checks, then reads
//             into a reused buffer, frames parsed in place and handed to the
//             receiver in one task per read.
//   the watchdog, one timer for the transport: write, connect and idle
//             timeouts, and keepalives on quiet outbound connections.
//
// send() wakes the I/O thread only when nothing there will look at the
// queue anyway (no write in flight, no dial under way): a busy connection
// takes what accumulated when its write completes, in one gathering write.
// On an idle plain-TCP connection (nothing written for inline_write_min_idle)
// send() does not wake it at all: it writes the frame itself, without
// blocking, and hands over to the I/O thread only what the socket would not
// take at once.
#include "keel/tcp_transport.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <openssl/x509v3.h>

#include "core/prng.h"
#include "transport/io_thread.h"
#include "transport/receiver_gate.h"
#include "transport/tcp_frame.h"

namespace keel {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using transport::FrameKind;
using transport::HandshakeCode;
using transport::ParsedFrame;

std::size_t lane_index(Lane lane) { return lane == Lane::kControl ? 0 : 1; }
const char* lane_name(Lane lane) { return lane == Lane::kControl ? "control" : "replication"; }

struct HostPort {
  std::string host;
  std::string port;
};
// "host:port", "[v6]:port".
Result<HostPort> split_address(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return Status::invalid_argument("address '" + address + "' has no port (host:port)");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) return Status::invalid_argument("address '" + address + "' has no host");
  return HostPort{host, address.substr(colon + 1)};
}

std::string endpoint_text(const tcp::socket& socket) {
  asio::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return "?";
  return remote.address().to_string() + ":" + std::to_string(remote.port());
}

struct LaneCounters {
  std::atomic<std::uint64_t> frames_sent{0}, bytes_sent{0}, frames_received{0}, bytes_received{0},
      frames_dropped{0};
  TcpLaneStats snapshot() const {
    return {frames_sent.load(), bytes_sent.load(), frames_received.load(), bytes_received.load(),
            frames_dropped.load()};
  }
};

// A TCP socket, plain or inside TLS: with TLS off the ssl::stream is only a
// holder and every operation goes to its next layer.
class Stream {
 public:
  Stream(asio::io_context& io, asio::ssl::context& context, bool tls)
      : stream_(io, context), tls_(tls) {}
  tcp::socket& socket() { return stream_.next_layer(); }
  asio::ssl::stream<tcp::socket>& tls_stream() { return stream_; }
  bool tls() const { return tls_; }

  template <class Buffers, class Handler>
  void write(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      asio::async_write(stream_, buffers, std::forward<Handler>(handler));
    } else {
      asio::async_write(stream_.next_layer(), buffers, std::forward<Handler>(handler));
    }
  }
  template <class Buffers, class Condition, class Handler>
  void write(const Buffers& buffers, Condition condition, Handler&& handler) {
    if (tls_) {
      asio::async_write(stream_, buffers, condition, std::forward<Handler>(handler));
    } else {
      asio::async_write(stream_.next_layer(), buffers, condition, std::forward<Handler>(handler));
    }
  }
  template <class Buffers, class Handler>
  void read_exactly(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      asio::async_read(stream_, buffers, std::forward<Handler>(handler));
    } else {
      asio::async_read(stream_.next_layer(), buffers, std::forward<Handler>(handler));
    }
  }
  template <class Buffers, class Handler>
  void read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      stream_.async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      stream_.next_layer().async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  void close() {
    asio::error_code ignored;
    stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.next_layer().close(ignored);
  }

 private:
  asio::ssl::stream<tcp::socket> stream_;
  bool tls_;
};

class TcpTransportImpl;

class Outbound : public std::enable_shared_from_this<Outbound> {
 public:
  Outbound(TcpTransportImpl& owner, ServerId peer, Lane lane, std::uint64_t seed);

  // Any thread.
  void enqueue(const Server& to, std::string frame);
  // Writes `frame` whole to the socket without blocking, or nothing but a
  // part kept in partial_; false when it must be queued. Under mutex_.
  bool try_direct_write(const std::string& frame);
  // I/O thread.
  void pump();
  void watchdog(Clock::time_point now);
  void shut();

 private:
  enum class Phase { kIdle, kConnecting, kReady, kBackoff, kShut };
  void start_connect();
  // Dials endpoints_[next], then the ones after it, until one connects.
  void connect_to(std::size_t next, std::uint64_t generation, const std::string& last_error);
  void on_connected();
  // A read kept pending on the connection, which carries nothing towards
  // this side after the handshake: it completes when the peer closes.
  void watch_for_close();
  void send_hello();
  void write_batch();
  void write_keepalive();
  // Asio's "transfer all", which also notes the time of each step, so that
  // write_timeout measures a stall rather than the length of a write.
  auto progress_condition() {
    return [this](const asio::error_code& ec, std::size_t) -> std::size_t {
      write_progress_ = Clock::now();
      return ec ? 0 : asio::detail::default_max_transfer_size;
    };
  }
  void fail(const std::string& why);
  void on_backoff_done();

  TcpTransportImpl& owner_;
  const ServerId peer_;
  const Lane lane_;

  std::mutex mutex_;     // guards the fields up to the blank line
  std::string address_;  // the peer's address as last given to send()
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool io_will_look_ = false;  // a pump is posted, or a write or dial will pump
  // Plain TCP, connected, nothing queued or being written: send() may write
  // straight to the socket (`fd_`) from its own thread, under this mutex,
  // and spare the I/O thread a wake-up. Cleared under the mutex before the
  // I/O thread writes or closes the socket.
  bool direct_ok_ = false;
  int fd_ = -1;
  // The unwritten rest of a frame a direct write sent in part: goes first.
  std::string partial_;

  // I/O thread only.
  Phase phase_ = Phase::kIdle;
  std::unique_ptr<Stream> stream_;
  std::uint64_t generation_ = 0;  // bumped per connection: stale handlers see a newer one
  Clock::time_point phase_started_{};
  bool writing_ = false;
  std::atomic<Clock::rep> last_write_{0};  // direct writes update it too
  std::vector<std::string> payloads_;      // the batch being written
  std::string partial_in_flight_;          // partial_, while it is written
  std::string headers_;
  std::vector<asio::const_buffer> buffers_;
  std::string hello_;
  std::array<char, transport::kAnswerBytes> answer_{};
  std::string keepalive_;
  std::chrono::milliseconds backoff_;
  asio::steady_timer backoff_timer_;
  std::unique_ptr<tcp::resolver> resolver_;
  std::vector<tcp::endpoint> endpoints_;  // what the address resolved to
  std::array<char, 1> close_probe_{};
  Clock::time_point write_progress_{};  // the last time the write in flight moved bytes
  std::string dialled_host_;
  std::uint64_t failures_in_a_row_ = 0;
  core::Prng prng_;
};

class Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  Inbound(TcpTransportImpl& owner, std::unique_ptr<Stream> stream);
  void begin();
  void watchdog(Clock::time_point now);
  // Closes the connection, logging `why` unless it is empty.
  void shut(const std::string& why);
  bool closed() const { return closed_; }

 private:
  void read_hello();
  void on_hello();
  void refuse(HandshakeCode code, const std::string& why);
  void read_frames();
  void on_read(std::size_t bytes);

  TcpTransportImpl& owner_;
  std::unique_ptr<Stream> stream_;
  std::string peer_text_;
  bool handshaken_ = false;
  bool closed_ = false;
  Clock::time_point opened_ = Clock::now();
  Clock::time_point last_read_ = Clock::now();
  std::array<char, transport::kHelloBytes> hello_bytes_{};
  transport::Hello hello_;
  std::string answer_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

class TcpTransportImpl final : public TcpTransport,
                               public std::enable_shared_from_this<TcpTransportImpl> {
 public:
  explicit TcpTransportImpl(TcpTransportOptions options)
      : options_(std::move(options)),
        io_thread_("keel-tcp-" + std::to_string(options_.id.value)),
        io_(io_thread_.context()),
        tls_context_(asio::ssl::context::tls),
        acceptor_(io_),
        watchdog_timer_(io_),
        accept_retry_timer_(io_),
        gate_(std::make_shared<transport::ReceiverGate>()),
        logger_(options_.logger ? options_.logger : make_stderr_logger()),
        metrics_(options_.metrics ? options_.metrics : make_null_metrics()) {}

  ~TcpTransportImpl() override {
    gate_->close();
    io_thread_.stop();
    // Connections and their handlers go with io_ (declared first, destroyed last).
    std::lock_guard lock(mutex_);
    outbound_.clear();
    inbound_.clear();
  }

  Status init() {
    if (options_.tls) {
      asio::error_code ec;
      tls_context_.set_options(asio::ssl::context::default_workarounds |
                                   asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                   asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                               ec);
      const TcpTlsOptions& tls = *options_.tls;
      tls_context_.use_certificate_chain_file(tls.certificate_file, ec);
      if (ec)
        return Status::invalid_argument("tcp transport: tls certificate_file '" +
                                        tls.certificate_file + "': " + ec.message());
      tls_context_.use_private_key_file(tls.private_key_file, asio::ssl::context::pem, ec);
      if (ec)
        return Status::invalid_argument("tcp transport: tls private_key_file '" +
                                        tls.private_key_file + "': " + ec.message());
      tls_context_.load_verify_file(tls.ca_file, ec);
      if (ec)
        return Status::invalid_argument("tcp transport: tls ca_file '" + tls.ca_file +
                                        "': " + ec.message());
      tls_context_.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert,
                                   ec);
    }
    Result<HostPort> listen = split_address(options_.listen_address);
    if (!listen.is_ok())
      return Status::invalid_argument("tcp transport: listen_address: " +
                                      listen.status().message());
    asio::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(listen->host, listen->port, tcp::resolver::passive, ec);
    if (ec || endpoints.empty()) {
      return Status::invalid_argument("tcp transport: cannot resolve listen_address '" +
                                      options_.listen_address + "': " + ec.message());
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::unavailable("tcp transport: cannot listen on " + options_.listen_address +
                                 ": " + ec.message());
    }
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    listen_address_ = (bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                               : bound.address().to_string()) +
                      ":" + std::to_string(bound.port());
    if (!options_.outgoing_address.empty()) {
      outgoing_ = asio::ip::make_address(options_.outgoing_address, ec);
      if (ec) {
        return Status::invalid_argument("tcp transport: outgoing_address '" +
                                        options_.outgoing_address + "' is not an IP address");
      }
    }
    accept();
    arm_watchdog();
    io_thread_.start();
    return Status::ok();
  }

  Status start(Receiver receiver, std::shared_ptr<Executor> deliver_on) override {
    if (gate_->epoch()) return Status::invalid_argument("transport: already started");
    {
      std::lock_guard lock(mutex_);
      deliver_on_ = std::move(deliver_on);
      stopped_ = false;
    }
    return gate_->open(std::move(receiver));
  }
  using Transport::start;

  void send(const Server& to, Lane lane, std::string frame) override {
    LaneCounters& counters = lanes_[lane_index(lane)];
    if (frame.size() > options_.max_frame_bytes) {
      counters.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      log_once_per_second("drops a frame of " + std::to_string(frame.size()) +
                          " bytes for server " + std::to_string(to.id.value) +
                          ": larger than max_frame_bytes");
      return;
    }
    std::shared_ptr<Outbound> outbound;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) {
        counters.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      auto& slot = outbound_[{to.id.value, lane_index(lane)}];
      if (!slot) slot = std::make_shared<Outbound>(*this, to.id, lane, seed_++);
      outbound = slot;
    }
    outbound->enqueue(to, std::move(frame));
  }

  void stop() override {
    gate_->close();
    std::vector<std::shared_ptr<Outbound>> outbound;
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
      deliver_on_.reset();
      for (auto& [key, o] : outbound_) outbound.push_back(o);
      outbound_.clear();
    }
    // Connections close on the I/O thread; stop() does not wait for it (the
    // gate already guarantees nothing more is delivered).
    asio::post(io_, [this, outbound = std::move(outbound)] {
      for (const auto& o : outbound) o->shut();
      for (const auto& i : inbound_) i->shut({});  // not worth a log line
      inbound_.clear();
    });
  }

  std::shared_ptr<Executor> make_io_executor(const std::string& name) override {
    return io_thread_.make_executor(name);
  }
  bool on_io_thread() const { return io_thread_.on_thread(); }

  std::string listen_address() const override { return listen_address_; }

  TcpTransportStats stats() const override {
    TcpTransportStats s;
    s.connections_made = connections_made_.load();
    s.connections_failed = connections_failed_.load();
    s.connections_accepted = connections_accepted_.load();
    s.connections_refused = connections_refused_.load();
    s.rejected_malformed_frame = rejected_malformed_.load();
    s.rejected_oversized_frame = rejected_oversized_.load();
    s.rejected_wrong_cluster = rejected_wrong_cluster_.load();
    s.rejected_bad_handshake = rejected_bad_handshake_.load();
    s.writes = writes_.load();
    s.control = lanes_[0].snapshot();
    s.replication = lanes_[1].snapshot();
    return s;
  }

  // For Outbound and Inbound.
  const TcpTransportOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  asio::ssl::context& tls_context() { return tls_context_; }
  const std::optional<asio::ip::address>& outgoing() const { return outgoing_; }
  LaneCounters& lane(Lane lane) { return lanes_[lane_index(lane)]; }
  // Every line says what the transport dropped, refused or closed, and why
  // (a warning), or that a peer is reachable again (info).
  void log(const std::string& line, LogLevel level = LogLevel::kWarn) {
    logger_->log(level, "tcp: " + line, {{"server", options_.id.value}});
  }
  void log_once_per_second(const std::string& line) {
    const auto now = Clock::now().time_since_epoch().count();
    auto last = last_rate_limited_log_.load();
    if (last != 0 &&
        now - last < std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(1)).count()) {
      return;
    }
    if (last_rate_limited_log_.compare_exchange_strong(last, now)) log(line);
  }
  // About inbound connections: at most kInboundLogLinesPerSecond lines a
  // second, so that a port scanner or a misconfigured client cannot flood
  // the log (every refusal is still counted in stats()).
  static constexpr int kInboundLogLinesPerSecond = 20;
  void log_inbound(const std::string& line) {
    {
      std::lock_guard lock(inbound_log_mutex_);
      const auto now = Clock::now();
      if (now - inbound_log_window_ >= std::chrono::seconds(1)) {
        inbound_log_window_ = now;
        inbound_log_lines_ = 0;
      }
      if (++inbound_log_lines_ > kInboundLogLinesPerSecond) return;
    }
    log(line);
  }
  // Frames parsed from one read of an inbound connection, for the receiver.
  void deliver(std::vector<std::string> frames) {
    // The epoch before the executor: start() sets the executor before it
    // opens a new epoch, so a frame never reaches a new receiver through
    // the executor of an earlier start (a stale epoch is dropped by the gate).
    const std::optional<std::uint64_t> epoch = gate_->epoch();
    if (!epoch) return;  // not started: nothing is delivered before start()
    std::shared_ptr<Executor> executor;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      executor = deliver_on_;
    }
    auto task = [gate = gate_, epoch = *epoch, frames = std::move(frames)]() mutable {
      for (std::string& frame : frames) gate->deliver(epoch, std::move(frame));
    };
    if (executor) {
      executor->post(std::move(task));
    } else {
      task();
    }
  }

  std::atomic<std::uint64_t> connections_made_{0}, connections_failed_{0}, connections_accepted_{0},
      connections_refused_{0}, rejected_malformed_{0}, rejected_oversized_{0},
      rejected_wrong_cluster_{0}, rejected_bad_handshake_{0}, writes_{0};

 private:
  void accept() {
    auto stream = std::make_shared<std::unique_ptr<Stream>>(
        std::make_unique<Stream>(io_, tls_context_, options_.tls.has_value()));
    acceptor_.async_accept((*stream)->socket(), [this, stream](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of file descriptors, say: retry a little later rather than spin.
        log_once_per_second("cannot accept a connection: " + ec.message());
        accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
        accept_retry_timer_.async_wait([this](const asio::error_code& timer_ec) {
          if (!timer_ec) accept();
        });
        return;
      }
      {
        std::erase_if(inbound_, [](const auto& i) { return i->closed(); });
        if (inbound_.size() >= options_.max_inbound_connections) {
          connections_refused_.fetch_add(1);
          log_once_per_second("refuses a connection from " + endpoint_text((*stream)->socket()) +
                              ": max_inbound_connections (" +
                              std::to_string(options_.max_inbound_connections) + ") are open");
          (*stream)->close();
        } else {
          auto inbound = std::make_shared<Inbound>(*this, std::move(*stream));
          inbound_.push_back(inbound);
          inbound->begin();
        }
      }
      accept();
    });
  }

  std::chrono::milliseconds watchdog_period() const {
    auto period =
        std::min({options_.connect_timeout, options_.write_timeout, options_.idle_timeout / 3}) / 4;
    return std::clamp(period, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  }
  // The counters' growth since the last report, per lane and direction.
  void report_metrics() {
    for (Lane lane : {Lane::kControl, Lane::kReplication}) {
      const TcpLaneStats now = lanes_[lane_index(lane)].snapshot();
      TcpLaneStats& told = reported_[lane_index(lane)];
      const std::uint64_t server = options_.id.value;
      auto report = [&](const char* name, const char* direction, std::uint64_t current,
                        std::uint64_t& before) {
        if (current > before) {
          metrics_->add(name, current - before,
                        {{"server", server}, {"lane", lane_name(lane)}, {"direction", direction}});
        }
        before = current;
      };
      report("keel_transport_frames_total", "sent", now.frames_sent, told.frames_sent);
      report("keel_transport_bytes_total", "sent", now.bytes_sent, told.bytes_sent);
      report("keel_transport_frames_total", "received", now.frames_received, told.frames_received);
      report("keel_transport_bytes_total", "received", now.bytes_received, told.bytes_received);
      report("keel_transport_frames_total", "dropped", now.frames_dropped, told.frames_dropped);
    }
  }
  void arm_watchdog() {
    watchdog_timer_.expires_after(watchdog_period());
    watchdog_timer_.async_wait([this](const asio::error_code& ec) {
      if (ec) return;
      const auto now = Clock::now();
      std::vector<std::shared_ptr<Outbound>> outbound;
      {
        std::lock_guard lock(mutex_);
        for (auto& [key, o] : outbound_) outbound.push_back(o);
      }
      for (const auto& o : outbound) o->watchdog(now);
      for (const auto& i : inbound_) i->watchdog(now);
      std::erase_if(inbound_, [](const auto& i) { return i->closed(); });
      report_metrics();
      arm_watchdog();
    });
  }

  const TcpTransportOptions options_;
  transport::IoThread io_thread_;  // before everything that uses it: destroyed after them
  asio::io_context& io_;           // io_thread_'s
  asio::ssl::context tls_context_;
  tcp::acceptor acceptor_;
  asio::steady_timer watchdog_timer_;
  asio::steady_timer accept_retry_timer_;
  std::optional<asio::ip::address> outgoing_;
  std::string listen_address_;
  std::shared_ptr<transport::ReceiverGate> gate_;
  const std::shared_ptr<Logger> logger_;        // options_.logger, or stderr
  const std::shared_ptr<MetricsSink> metrics_;  // options_.metrics, or none
  LaneCounters lanes_[2];
  TcpLaneStats reported_[2];  // what the metrics sink was told (I/O thread only)
  std::atomic<Clock::rep> last_rate_limited_log_{0};
  std::mutex inbound_log_mutex_;  // guards the two below
  Clock::time_point inbound_log_window_{};
  int inbound_log_lines_ = 0;

  std::mutex mutex_;  // guards the fields below
  std::map<std::pair<std::uint64_t, std::size_t>, std::shared_ptr<Outbound>> outbound_;
  std::shared_ptr<Executor> deliver_on_;
  bool stopped_ = false;
  std::uint64_t seed_ = 0x6b65656c;

  std::vector<std::shared_ptr<Inbound>> inbound_;  // I/O thread only
};

// --- Outbound --------------------------------------------------------------------------

Outbound::Outbound(TcpTransportImpl& owner, ServerId peer, Lane lane, std::uint64_t seed)
    : owner_(owner),
      peer_(peer),
      lane_(lane),
      backoff_(owner.options().backoff_initial),
      backoff_timer_(owner.io()),
      prng_(seed ^ (peer.value * 0x9e3779b97f4a7c15ULL) ^ lane_index(lane)) {
  keepalive_ = transport::encode_frame_header(FrameKind::kKeepalive, {});
}

void Outbound::enqueue(const Server& to, std::string frame) {
  bool post = false;
  {
    std::lock_guard lock(mutex_);
    if (address_ != to.address) address_ = to.address;
    if (queued_bytes_ + frame.size() > owner_.options().max_queued_bytes) {
      owner_.lane(lane_).frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (direct_ok_ && !io_will_look_) {
      const auto now = Clock::now().time_since_epoch();
      const auto idle = now - Clock::duration(last_write_.load(std::memory_order_relaxed));
      if (idle >= owner_.options().inline_write_min_idle && try_direct_write(frame)) return;
    }
    queued_bytes_ += frame.size();
    queue_.push_back(std::move(frame));
    if (!io_will_look_) post = io_will_look_ = true;
  }
  if (post) asio::post(owner_.io(), [self = shared_from_this()] { self->pump(); });
}

bool Outbound::try_direct_write(const std::string& frame) {
  const std::string header = transport::encode_frame_header(FrameKind::kMessage, frame);
  iovec parts[2] = {{const_cast<char*>(header.data()), header.size()},
                    {const_cast<char*>(frame.data()), frame.size()}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = 2;
  const ssize_t written = ::sendmsg(fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (written <= 0) return false;  // would block, or failed: the I/O thread takes over and sees why
  const std::size_t total = header.size() + frame.size();
  const auto done = static_cast<std::size_t>(written);
  LaneCounters& counters = owner_.lane(lane_);
  counters.bytes_sent.fetch_add(done, std::memory_order_relaxed);
  owner_.writes_.fetch_add(1, std::memory_order_relaxed);
  last_write_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  if (done < total) {
    // The socket took part: the rest must follow before any other frame.
    partial_ =
        (done < header.size() ? header.substr(done) + frame : frame.substr(done - header.size()));
    direct_ok_ = false;
    io_will_look_ = true;
    asio::post(owner_.io(), [self = shared_from_this()] { self->pump(); });
    return true;
  }
  counters.frames_sent.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Outbound::pump() {
  switch (phase_) {
    case Phase::kShut:
    case Phase::kConnecting:  // on_connected pumps
    case Phase::kBackoff:     // on_backoff_done dials if anything is queued
      return;
    case Phase::kIdle:
      start_connect();
      return;
    case Phase::kReady:
      if (!writing_) write_batch();
      return;
  }
}

void Outbound::start_connect() {
  std::string address;
  {
    std::lock_guard lock(mutex_);
    address = address_;
  }
  phase_ = Phase::kConnecting;
  phase_started_ = Clock::now();
  const std::uint64_t generation = ++generation_;
  Result<HostPort> target = split_address(address);
  if (!target.is_ok()) {
    fail("has no usable address for it: " + target.status().message());
    return;
  }
  dialled_host_ = target->host;
  resolver_ = std::make_unique<tcp::resolver>(owner_.io());
  resolver_->async_resolve(
      target->host, target->port,
      [self = shared_from_this(), generation](const asio::error_code& ec,
                                              const tcp::resolver::results_type& results) {
        if (generation != self->generation_ || self->phase_ != Phase::kConnecting) return;
        if (ec || results.empty()) {
          self->fail("cannot resolve its address: " +
                     (ec ? ec.message() : std::string("no result")));
          return;
        }
        self->endpoints_.clear();
        for (const auto& entry : results) {
          // With an outgoing address, only endpoints of its family can be reached.
          if (!self->owner_.outgoing() ||
              entry.endpoint().address().is_v6() == self->owner_.outgoing()->is_v6()) {
            self->endpoints_.push_back(entry.endpoint());
          }
        }
        self->connect_to(0, generation, "no address of its family");
      });
}

void Outbound::connect_to(std::size_t next, std::uint64_t generation,
                          const std::string& last_error) {
  if (next >= endpoints_.size()) {
    fail("cannot connect: " + last_error);
    return;
  }
  // A fresh socket per address tried.
  stream_ =
      std::make_unique<Stream>(owner_.io(), owner_.tls_context(), owner_.options().tls.has_value());
  const tcp::endpoint endpoint = endpoints_[next];
  asio::error_code open_ec;
  tcp::socket& socket = stream_->socket();
  socket.open(endpoint.protocol(), open_ec);
  if (!open_ec && owner_.outgoing()) socket.bind(tcp::endpoint(*owner_.outgoing(), 0), open_ec);
  if (open_ec) {
    connect_to(next + 1, generation, open_ec.message());
    return;
  }
  socket.async_connect(
      endpoint, [self = shared_from_this(), generation, next](const asio::error_code& connect_ec) {
        if (generation != self->generation_ || self->phase_ != Phase::kConnecting) return;
        if (connect_ec) {
          self->connect_to(next + 1, generation, connect_ec.message());
          return;
        }
        asio::error_code ignored;
        self->stream_->socket().set_option(tcp::no_delay(true), ignored);
        if (!self->stream_->tls()) {
          self->send_hello();
          return;
        }
        auto& tls = self->stream_->tls_stream();
        if (self->owner_.options().tls->verify_peer_names) {
          tls.set_verify_callback(asio::ssl::host_name_verification(self->dialled_host_));
        }
        tls.async_handshake(asio::ssl::stream_base::client,
                            [self, generation](const asio::error_code& tls_ec) {
                              if (generation != self->generation_) return;
                              if (tls_ec) {
                                self->fail("TLS handshake failed: " + tls_ec.message());
                                return;
                              }
                              self->send_hello();
                            });
      });
}

void Outbound::send_hello() {
  const std::uint64_t generation = generation_;
  hello_ =
      transport::encode_hello({transport::kTcpProtocolVersion, lane_, owner_.options().cluster_id,
                               owner_.options().id.value, peer_.value});
  stream_->write(asio::buffer(hello_), [self = shared_from_this(), generation](
                                           const asio::error_code& ec, std::size_t) {
    if (generation != self->generation_ || self->phase_ != Phase::kConnecting) return;
    if (ec) {
      self->fail("cannot send its hello: " + ec.message());
      return;
    }
    self->stream_->read_exactly(
        asio::buffer(self->answer_),
        [self, generation](const asio::error_code& read_ec, std::size_t) {
          if (generation != self->generation_ || self->phase_ != Phase::kConnecting) return;
          if (read_ec) {
            self->fail("closed the connection during the handshake: " + read_ec.message());
            return;
          }
          Result<HandshakeCode> code = transport::decode_answer(
              std::string_view(self->answer_.data(), self->answer_.size()));
          if (!code.is_ok()) {
            self->fail("answered the hello with garbage: " + code.status().message());
            return;
          }
          if (*code != HandshakeCode::kAccepted) {
            self->fail(std::string("refused the connection: ") + transport::to_string(*code));
            return;
          }
          self->on_connected();
        });
  });
}

void Outbound::on_connected() {
  phase_ = Phase::kReady;
  owner_.connections_made_.fetch_add(1);
  if (failures_in_a_row_ > 0) {
    owner_.log("reaches server " + std::to_string(peer_.value) + " (" + lane_name(lane_) +
                   " lane) again after " + std::to_string(failures_in_a_row_) +
                   " failed attempt(s)",
               LogLevel::kInfo);
  }
  failures_in_a_row_ = 0;
  backoff_ = owner_.options().backoff_initial;
  last_write_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  watch_for_close();
  write_batch();
}

void Outbound::watch_for_close() {
  const std::uint64_t generation = generation_;
  stream_->read_some(asio::buffer(close_probe_), [self = shared_from_this(), generation](
                                                     const asio::error_code& ec, std::size_t) {
    if (generation != self->generation_ || self->phase_ != Phase::kReady) return;
    self->fail(ec ? "closed the connection (" + ec.message() + ")"
                  : std::string("sent bytes on a connection that carries none its way"));
  });
}

void Outbound::write_batch() {
  payloads_.clear();
  std::string partial;
  {
    std::lock_guard lock(mutex_);
    partial = std::move(partial_);
    partial_.clear();
    // queued_bytes_ keeps counting the batch until it is written, so the
    // bound covers what is queued and what is in flight.
    const std::size_t take = std::min(queue_.size(), owner_.options().max_frames_per_write);
    for (std::size_t i = 0; i < take; ++i) {
      payloads_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (payloads_.empty() && partial.empty()) {
      io_will_look_ = false;
      if (!stream_->tls() && owner_.options().inline_writes) {
        fd_ = stream_->socket().native_handle();
        direct_ok_ = true;
      }
      return;
    }
    direct_ok_ = false;
  }
  headers_.clear();
  headers_.reserve(payloads_.size() * transport::kFrameHeaderBytes);  // no reallocation below
  buffers_.clear();
  std::size_t bytes = 0;
  std::size_t frames = payloads_.size();
  partial_in_flight_.clear();
  if (!partial.empty()) {
    // The rest of a frame a direct write began: its bytes first, counted as
    // the whole frame.
    partial_in_flight_ = std::move(partial);
    buffers_.emplace_back(partial_in_flight_.data(), partial_in_flight_.size());
    bytes += partial_in_flight_.size();
    ++frames;
  }
  for (const std::string& payload : payloads_) {
    const std::size_t at = headers_.size();
    headers_ += transport::encode_frame_header(FrameKind::kMessage, payload);
    buffers_.emplace_back(headers_.data() + at, transport::kFrameHeaderBytes);
    buffers_.emplace_back(payload.data(), payload.size());
    bytes += transport::kFrameHeaderBytes + payload.size();
  }
  writing_ = true;
  write_progress_ = Clock::now();
  const std::uint64_t generation = generation_;
  const std::size_t payload_bytes =
      bytes - partial_in_flight_.size() - payloads_.size() * transport::kFrameHeaderBytes;
  stream_->write(buffers_, progress_condition(),
                 [self = shared_from_this(), generation, frames, bytes, payload_bytes](
                     const asio::error_code& ec, std::size_t) {
                   if (generation != self->generation_) return;
                   self->writing_ = false;
                   {
                     std::lock_guard lock(self->mutex_);
                     self->queued_bytes_ -= payload_bytes;
                   }
                   self->payloads_.clear();
                   self->partial_in_flight_.clear();
                   if (ec) {
                     self->owner_.lane(self->lane_)
                         .frames_dropped.fetch_add(frames, std::memory_order_relaxed);
                     self->fail("write failed: " + ec.message());
                     return;
                   }
                   LaneCounters& counters = self->owner_.lane(self->lane_);
                   counters.frames_sent.fetch_add(frames, std::memory_order_relaxed);
                   counters.bytes_sent.fetch_add(bytes, std::memory_order_relaxed);
                   self->owner_.writes_.fetch_add(1, std::memory_order_relaxed);
                   self->last_write_.store(Clock::now().time_since_epoch().count(),
                                           std::memory_order_relaxed);
                   self->write_batch();
                 });
}

void Outbound::write_keepalive() {
  {
    std::lock_guard lock(mutex_);
    // Something is about to be written anyway (and a keepalive must never
    // land inside the rest of a frame a direct write began).
    if (!partial_.empty() || !queue_.empty()) return;
    direct_ok_ = false;  // write_batch re-enables direct writes after it
  }
  writing_ = true;
  write_progress_ = Clock::now();
  const std::uint64_t generation = generation_;
  stream_->write(asio::buffer(keepalive_), progress_condition(),
                 [self = shared_from_this(), generation](const asio::error_code& ec, std::size_t) {
                   if (generation != self->generation_) return;
                   self->writing_ = false;
                   if (ec) {
                     self->fail("keepalive failed: " + ec.message());
                     return;
                   }
                   self->owner_.lane(self->lane_)
                       .bytes_sent.fetch_add(self->keepalive_.size(), std::memory_order_relaxed);
                   self->last_write_.store(Clock::now().time_since_epoch().count(),
                                           std::memory_order_relaxed);
                   self->write_batch();  // frames queued meanwhile wait for no wake-up
                 });
}

void Outbound::watchdog(Clock::time_point now) {
  const TcpTransportOptions& o = owner_.options();
  if (phase_ == Phase::kConnecting && now - phase_started_ > o.connect_timeout) {
    fail("did not complete the connection within connect_timeout");
  } else if (phase_ == Phase::kReady && writing_ && now - write_progress_ > o.write_timeout) {
    fail("write made no progress within write_timeout");
  } else if (phase_ == Phase::kReady && !writing_ &&
             now - Clock::time_point(
                       Clock::duration(last_write_.load(std::memory_order_relaxed))) >=
                 o.idle_timeout / 3) {
    write_keepalive();
  }
}

void Outbound::fail(const std::string& why) {
  if (phase_ == Phase::kShut) return;
  ++generation_;  // handlers of this connection find themselves stale
  if (phase_ == Phase::kConnecting) owner_.connections_failed_.fetch_add(1);
  if (failures_in_a_row_++ == 0) {
    owner_.log("cannot use its connection to server " + std::to_string(peer_.value) + " (" +
               lane_name(lane_) + " lane): it " + why + "; retrying with backoff");
  }
  // A batch still being written is lost with the connection (its handler,
  // now stale, will not count it).
  std::size_t dropped = writing_ ? payloads_.size() + (partial_in_flight_.empty() ? 0 : 1) : 0;
  {
    // What was queued for a broken connection is stale by the time a new one
    // exists: dropped (Raft retransmits what still matters). No direct write
    // may touch the socket once it is closed below.
    std::lock_guard lock(mutex_);
    dropped += queue_.size() + (partial_.empty() ? 0 : 1);
    queue_.clear();
    partial_.clear();
    queued_bytes_ = 0;
    io_will_look_ = false;
    direct_ok_ = false;
  }
  if (stream_) stream_->close();
  if (resolver_) resolver_->cancel();
  writing_ = false;
  owner_.lane(lane_).frames_dropped.fetch_add(dropped, std::memory_order_relaxed);
  phase_ = Phase::kBackoff;
  const auto cap = backoff_.count();
  const auto delay =
      std::chrono::milliseconds(cap / 2 + static_cast<long>(prng_.uniform(0, cap / 2 + 1)));
  backoff_ = std::min(backoff_ * 2, owner_.options().backoff_max);
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec) self->on_backoff_done();
  });
}

void Outbound::on_backoff_done() {
  if (phase_ != Phase::kBackoff) return;
  phase_ = Phase::kIdle;
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    queued = !queue_.empty();
  }
  if (queued) start_connect();
}

void Outbound::shut() {
  phase_ = Phase::kShut;
  ++generation_;
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    direct_ok_ = false;
    dropped = queue_.size() + (partial_.empty() ? 0 : 1);
    queue_.clear();
    partial_.clear();
    queued_bytes_ = 0;
  }
  owner_.lane(lane_).frames_dropped.fetch_add(dropped, std::memory_order_relaxed);
  backoff_timer_.cancel();
  if (resolver_) resolver_->cancel();
  if (stream_) stream_->close();
}

// --- Inbound ---------------------------------------------------------------------------

Inbound::Inbound(TcpTransportImpl& owner, std::unique_ptr<Stream> stream)
    : owner_(owner), stream_(std::move(stream)) {
  peer_text_ = endpoint_text(stream_->socket());
}

void Inbound::begin() {
  asio::error_code ignored;
  stream_->socket().set_option(tcp::no_delay(true), ignored);
  if (!stream_->tls()) {
    read_hello();
    return;
  }
  stream_->tls_stream().async_handshake(asio::ssl::stream_base::server,
                                        [self = shared_from_this()](const asio::error_code& ec) {
                                          if (self->closed_) return;
                                          if (ec) {
                                            self->owner_.connections_refused_.fetch_add(1);
                                            self->shut("TLS handshake failed: " + ec.message());
                                            return;
                                          }
                                          self->read_hello();
                                        });
}

void Inbound::read_hello() {
  stream_->read_exactly(asio::buffer(hello_bytes_),
                        [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                          if (self->closed_) return;
                          if (ec) {
                            self->owner_.connections_refused_.fetch_add(1);
                            self->owner_.rejected_bad_handshake_.fetch_add(1);
                            self->shut("closed before a complete hello: " + ec.message());
                            return;
                          }
                          self->on_hello();
                        });
}

void Inbound::on_hello() {
  Result<transport::Hello> hello =
      transport::decode_hello(std::string_view(hello_bytes_.data(), hello_bytes_.size()));
  const TcpTransportOptions& o = owner_.options();
  if (!hello.is_ok()) {
    refuse(HandshakeCode::kMalformed, hello.status().message());
    return;
  }
  hello_ = *hello;
  if (hello_.version != transport::kTcpProtocolVersion) {
    refuse(HandshakeCode::kUnsupportedVersion,
           "protocol version " + std::to_string(hello_.version) + " (this server speaks " +
               std::to_string(transport::kTcpProtocolVersion) + ")");
    return;
  }
  if (hello_.cluster_id != o.cluster_id) {
    refuse(HandshakeCode::kWrongCluster, "cluster id " + std::to_string(hello_.cluster_id) +
                                             " (this cluster is " + std::to_string(o.cluster_id) +
                                             ")");
    return;
  }
  if (hello_.to != o.id.value) {
    refuse(HandshakeCode::kWrongDestination, "a hello for server " + std::to_string(hello_.to) +
                                                 " (this is " + std::to_string(o.id.value) + ")");
    return;
  }
  if (hello_.from == 0) {
    refuse(HandshakeCode::kUnknownSender, "a hello from server id 0");
    return;
  }
  if (stream_->tls() && o.tls->verify_peer_names) {
    X509* certificate = SSL_get1_peer_certificate(stream_->tls_stream().native_handle());
    const std::string name = "keel-" + std::to_string(hello_.from);
    const bool matches = certificate != nullptr &&
                         X509_check_host(certificate, name.data(), name.size(),
                                         X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT, nullptr) == 1;
    if (certificate != nullptr) X509_free(certificate);
    if (!matches) {
      refuse(HandshakeCode::kUnknownSender,
             "a certificate that does not name '" + name + "', the server it claims to be");
      return;
    }
  }
  answer_ = transport::encode_answer(HandshakeCode::kAccepted);
  stream_->write(asio::buffer(answer_),
                 [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                   if (self->closed_) return;
                   if (ec) {
                     self->shut("closed during the handshake: " + ec.message());
                     return;
                   }
                   self->handshaken_ = true;
                   self->owner_.connections_accepted_.fetch_add(1);
                   self->buffer_.resize(self->owner_.options().read_buffer_bytes);
                   self->read_frames();
                 });
}

void Inbound::refuse(HandshakeCode code, const std::string& why) {
  owner_.connections_refused_.fetch_add(1);
  if (code == HandshakeCode::kWrongCluster) {
    owner_.rejected_wrong_cluster_.fetch_add(1);
  } else {
    owner_.rejected_bad_handshake_.fetch_add(1);
  }
  owner_.log_inbound("refuses a connection from " + peer_text_ + ": it sent " + why);
  // The answer tells a keel peer why; then the connection closes whatever it
  // does. Nothing it sent reaches the receiver.
  answer_ = transport::encode_answer(code);
  closed_ = true;  // counted once; the watchdog leaves it alone
  stream_->write(asio::buffer(answer_),
                 [self = shared_from_this()](const asio::error_code&, std::size_t) {
                   self->stream_->close();
                 });
}

void Inbound::read_frames() {
  stream_->read_some(asio::buffer(buffer_.data() + end_, buffer_.size() - end_),
                     [self = shared_from_this()](const asio::error_code& ec, std::size_t bytes) {
                       if (self->closed_) return;
                       if (ec) {
                         if (self->end_ > self->begin_) {
                           // Gone in the middle of a frame: what it began is dropped.
                           self->owner_.rejected_malformed_.fetch_add(1);
                           self->shut("closed the connection inside a frame (" +
                                      std::to_string(self->end_ - self->begin_) +
                                      " bytes of it received)");
                           return;
                         }
                         // The dialler closed or the network failed between frames:
                         // normal life of a connection, not worth a log line.
                         self->closed_ = true;
                         self->stream_->close();
                         return;
                       }
                       self->on_read(bytes);
                     });
}

void Inbound::on_read(std::size_t bytes) {
  last_read_ = Clock::now();
  end_ += bytes;
  const TcpTransportOptions& o = owner_.options();
  LaneCounters& counters = owner_.lane(hello_.lane);
  counters.bytes_received.fetch_add(bytes, std::memory_order_relaxed);
  std::vector<std::string> frames;
  std::size_t needed = transport::kFrameHeaderBytes;
  for (;;) {
    const std::string_view input(buffer_.data() + begin_, end_ - begin_);
    ParsedFrame parsed = transport::parse_frame(input, o.max_frame_bytes);
    if (parsed.outcome == ParsedFrame::Outcome::kError) {
      if (parsed.oversized) {
        owner_.rejected_oversized_.fetch_add(1);
      } else {
        owner_.rejected_malformed_.fetch_add(1);
      }
      // Frames parsed before the bad one were intact and checksummed: they
      // are delivered; nothing after it is read.
      counters.frames_received.fetch_add(frames.size(), std::memory_order_relaxed);
      if (!frames.empty()) owner_.deliver(std::move(frames));
      shut("sent a bad frame: " + parsed.error.message());
      return;
    }
    if (parsed.outcome == ParsedFrame::Outcome::kNeedMore) {
      needed = parsed.needed;
      break;
    }
    begin_ += parsed.consumed;
    if (parsed.kind == FrameKind::kMessage) frames.emplace_back(parsed.payload);
  }
  counters.frames_received.fetch_add(frames.size(), std::memory_order_relaxed);
  if (!frames.empty()) owner_.deliver(std::move(frames));
  // Keep the partial frame at the front, in a buffer that holds it whole.
  const std::size_t partial = end_ - begin_;
  if (partial == 0) {
    begin_ = end_ = 0;
    if (buffer_.size() > o.read_buffer_bytes) {
      buffer_.resize(o.read_buffer_bytes);  // a large frame passed: give the memory back
      buffer_.shrink_to_fit();
    }
  } else if (buffer_.size() - begin_ < needed) {
    // The frame does not fit where it starts: move it to the front.
    std::memmove(buffer_.data(), buffer_.data() + begin_, partial);
    begin_ = 0;
    end_ = partial;
  }
  if (end_ == buffer_.size() && buffer_.size() < needed) {
    // Full, and the frame is larger: grow by doubling as its bytes arrive
    // (never to what a header merely claims), up to the frame's size.
    buffer_.resize(std::min(needed, buffer_.size() * 2));
  }
  read_frames();
}

void Inbound::watchdog(Clock::time_point now) {
  if (closed_) return;
  const TcpTransportOptions& o = owner_.options();
  if (!handshaken_ && now - opened_ > o.connect_timeout) {
    owner_.connections_refused_.fetch_add(1);
    owner_.rejected_bad_handshake_.fetch_add(1);
    shut("did not complete its handshake within connect_timeout");
  } else if (handshaken_ && now - last_read_ > o.idle_timeout) {
    shut("sent nothing within idle_timeout");
  }
}

void Inbound::shut(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  if (!why.empty()) {
    owner_.log_inbound("closes the connection from " + peer_text_ +
                       (handshaken_ ? " (server " + std::to_string(hello_.from) + ", " +
                                          lane_name(hello_.lane) + " lane)"
                                    : std::string()) +
                       ": " + why);
  }
  stream_->close();
}

// The transport's deleter. The last reference may go on the I/O thread
// itself (a runtime whose loop runs there drops it as it stops): the
// destructor, which joins that thread, then runs on a thread of its own.
void destroy_off_its_io_thread(TcpTransportImpl* doomed) {
  if (doomed->on_io_thread()) {
    std::thread([doomed] { delete doomed; }).detach();
  } else {
    delete doomed;
  }
}

}  // namespace

Result<std::shared_ptr<TcpTransport>> make_tcp_transport(TcpTransportOptions options) {
  Status valid = validate(options);
  if (!valid.is_ok()) return valid;
  std::shared_ptr<TcpTransportImpl> transport(new TcpTransportImpl(std::move(options)),
                                              destroy_off_its_io_thread);
  Status started = transport->init();
  if (!started.is_ok()) return started;
  return std::shared_ptr<TcpTransport>(std::move(transport));
}

}  // namespace keel
