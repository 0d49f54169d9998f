// keel/transport.h — how Raft messages travel between servers.
//
// A Transport moves opaque frames: the runtime encodes each message with
// keel's versioned wire codec, so every transport (TCP, in-memory, the
// simulator's network) carries the very bytes production carries. Frames
// are sent on one of two lanes so that heartbeats and votes are never queued
// behind large appends or snapshot chunks.
//
// Delivery is best-effort: a transport may drop, delay or (after a
// reconnect) duplicate frames, and Raft copes. It must not corrupt a frame
// silently; a frame that fails to decode is dropped and logged.
//
// Thread safety: send() may be called from any thread and must not block on
// the network. The receiver is called as tasks on the executor given to
// start() (the runtime passes its raft loop, so that a frame costs no thread
// hop before it is stepped), or from the transport's own thread(s) if none.
// make_io_executor() may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "keel/env.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel {

enum class Lane : std::uint8_t {
  kControl,      // votes, heartbeats, read-index, timeout-now: small and urgent
  kReplication,  // appends (and later snapshot chunks): bulk, ordered
};

class Transport {
 public:
  using Receiver = std::function<void(std::string frame)>;

  virtual ~Transport() = default;
  // Starts delivering frames addressed to this server to `receiver`, as
  // tasks on `deliver_on` (every call of the receiver is such a task), or on
  // the transport's own thread(s) when it is null.
  virtual Status start(Receiver receiver, std::shared_ptr<Executor> deliver_on) = 0;
  Status start(Receiver receiver) { return start(std::move(receiver), nullptr); }
  // Queues `frame` for `to`; never blocks. Frames beyond the transport's
  // bounds are dropped (Raft retransmits).
  virtual void send(const Server& to, Lane lane, std::string frame) = 0;
  // Stops delivery; after it returns the receiver is not called again.
  virtual void stop() = 0;
  // A new serial executor (keel/env.h) whose tasks run on the transport's
  // own I/O thread, among its socket work; null when the transport has no
  // such thread (the default). Frames delivered on it reach the receiver
  // without waking another thread, and frames sent from it are written by
  // the thread that owns the socket: the runtime runs its loop there
  // (Config::thread_policy). Its tasks must never block, since they hold up
  // every connection. Its timers run on the steady clock. It stays valid
  // after the transport is gone: posts are then dropped.
  virtual std::shared_ptr<Executor> make_io_executor(const std::string& name) {
    (void)name;
    return nullptr;
  }
};

// A network inside one process, for tests and benchmarks: each server gets a
// Transport; a frame is delivered after a delay as a task on the executor its
// receiver was started with (or on an executor of the network's own, made
// from the given Env), and can be dropped by partitions and fault settings.
//
// Thread safety: all methods may be called from any thread.
class InMemoryNetwork {
 public:
  // Frames in flight to one server at most; more are dropped (and counted),
  // so a receiver that stalls cannot make the network grow without limit.
  static constexpr std::size_t kMaxInflightFramesPerDestination = 10'000;

  explicit InMemoryNetwork(std::shared_ptr<Env> env);
  ~InMemoryNetwork();
  InMemoryNetwork(const InMemoryNetwork&) = delete;
  InMemoryNetwork& operator=(const InMemoryNetwork&) = delete;

  // The transport of server `id` (its address is looked up by id).
  std::shared_ptr<Transport> transport(ServerId id);

  // Frames from `from` to `to` are lost (one direction).
  void cut(ServerId from, ServerId to);
  // Lost in both directions between `id` and everyone else.
  void isolate(ServerId id);
  // Only servers in the same group reach each other.
  void partition(const std::vector<std::set<ServerId>>& groups);
  void heal();
  // Each frame is lost with this probability (0..1).
  void set_drop_rate(double rate);
  // Each frame that is not lost is also delivered a second time with this
  // probability (0..1), as a retransmitting link or a reconnect can do. The
  // copy draws its own delay, so it may arrive before the original.
  void set_duplicate_rate(double rate);
  // Each frame arrives after a delay drawn uniformly from [low, high].
  void set_delay(Duration low, Duration high);
  // Frames delivered and dropped so far (a delivered copy counts as a
  // delivery), and copies made by set_duplicate_rate.
  std::uint64_t delivered() const;
  std::uint64_t dropped() const;
  std::uint64_t duplicated() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace keel
