// InMemoryNetwork (keel/transport.h): frames between transports of one
// process, with the faults tests need (cuts, isolation, partitions, loss,
// delay) and the same bounds a real network imposes.
//
// Life of a frame:
//   1. send() checks, under the network's mutex and in this order: the
//      destination exists, reachability (cuts, isolation, partition), the drop
//      rate, the destination is started, the destination's in-flight bound.
//      Failing any drops the frame (counted). Otherwise a delay is drawn, and
//      the duplicate rate decides whether a copy (with a delay of its own,
//      within the same in-flight bound) travels too.
//   2. A task is posted, after the delay, to the executor the destination
//      was started with (the runtime's loop: no thread hop) or else to its
//      own delivery executor ("net-<id>", made when first needed); never run
//      inline, so a receiver is never re-entered from inside a send().
//   3. At delivery, reachability is checked again: a frame still in flight
//      when a partition or cut starts is lost, as on a real network, so a
//      test that partitions and then runs knows nothing crosses. The frame is
//      then handed to the destination's ReceiverGate, which drops it if the
//      destination stopped (or stopped and restarted) since it was sent.
//
// Lanes are not modelled: each frame is its own task, so no frame waits
// behind another's bytes. With a delay range, frames may be reordered.
//
// Randomness (loss, duplication and delay) comes from one PRNG seeded by the Env, so under
// ManualEnv a run replays exactly.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/prng.h"
#include "keel/transport.h"
#include "transport/reachability.h"
#include "transport/receiver_gate.h"

namespace keel {

namespace {

class NetworkCore;

// One server's transport: its receiving end (gate, delivery executor,
// in-flight count) plus a handle on the network for sending.
class MemoryTransport final : public Transport {
 public:
  MemoryTransport(ServerId id, std::weak_ptr<NetworkCore> network, std::shared_ptr<Env> env)
      : id_(id), network_(std::move(network)), env_(std::move(env)) {}
  ~MemoryTransport() override { stop_own_executor(); }

  Status start(Receiver receiver, std::shared_ptr<Executor> deliver_on) override {
    {
      std::lock_guard lock(mutex_);
      if (deliver_on) {
        executor_ = std::move(deliver_on);
      } else {
        if (!own_executor_) own_executor_ = env_->make_executor("net-" + std::to_string(id_.value));
        executor_ = own_executor_;
      }
    }
    return gate_.open(std::move(receiver));
  }
  using Transport::start;
  void send(const Server& to, Lane lane, std::string frame) override;
  void stop() override { gate_.close(); }

  ServerId id() const { return id_; }
  // Where deliveries run (null before the first start()).
  std::shared_ptr<Executor> executor() {
    std::lock_guard lock(mutex_);
    return executor_;
  }
  void stop_own_executor() {
    std::shared_ptr<Executor> own;
    {
      std::lock_guard lock(mutex_);
      own = own_executor_;
    }
    if (own) own->stop();
  }
  transport::ReceiverGate& gate() { return gate_; }
  // Frames accepted for this server and not yet delivered or dropped.
  std::atomic<std::size_t>& inflight_frames() { return inflight_frames_; }

 private:
  const ServerId id_;
  const std::weak_ptr<NetworkCore> network_;
  const std::shared_ptr<Env> env_;
  std::mutex mutex_;  // guards the two executors
  std::shared_ptr<Executor> executor_;
  std::shared_ptr<Executor> own_executor_;
  transport::ReceiverGate gate_;
  std::atomic<std::size_t> inflight_frames_{0};
};

// The network's shared state. Transports and delivery tasks hold it weakly:
// once the InMemoryNetwork is gone, sends are no-ops.
class NetworkCore : public std::enable_shared_from_this<NetworkCore> {
 public:
  explicit NetworkCore(std::shared_ptr<Env> env)
      : env_(std::move(env)), prng_(env_->random_seed()) {}

  std::shared_ptr<Transport> transport(ServerId id);
  void route(ServerId from, ServerId to, std::string frame);
  void close();

  void cut(ServerId from, ServerId to);
  void isolate(ServerId id);
  void partition(const std::vector<std::set<ServerId>>& groups);
  void heal();
  void set_drop_rate(double rate);
  void set_duplicate_rate(double rate);
  void set_delay(Duration low, Duration high);

  std::uint64_t delivered() const { return delivered_; }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t duplicated() const { return duplicated_; }

 private:
  struct Accepted {
    std::shared_ptr<MemoryTransport> destination;
    std::uint64_t epoch = 0;
    Duration delay{0};
    std::optional<Duration> duplicate_delay;  // a copy travels too
  };

  std::optional<Accepted> accept(ServerId from, ServerId to);
  void post_delivery(const Accepted& accepted, ServerId from, Duration delay, std::string frame);
  bool draw_probability(double rate);
  Duration draw_delay();
  void deliver(MemoryTransport& destination, ServerId from, std::uint64_t epoch, std::string frame);
  bool can_reach(ServerId from, ServerId to);

  const std::shared_ptr<Env> env_;
  std::mutex mutex_;  // guards the fields below
  std::map<ServerId, std::shared_ptr<MemoryTransport>> transports_;
  transport::Reachability reachability_;
  core::Prng prng_;
  double drop_rate_ = 0.0;
  double duplicate_rate_ = 0.0;
  Duration delay_low_{0};
  Duration delay_high_{0};

  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> duplicated_{0};
};

void MemoryTransport::send(const Server& to, Lane /*lane: not modelled*/, std::string frame) {
  if (const std::shared_ptr<NetworkCore> network = network_.lock()) {
    network->route(id_, to.id, std::move(frame));
  }
}

std::shared_ptr<Transport> NetworkCore::transport(ServerId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<MemoryTransport>& slot = transports_[id];
  if (!slot) slot = std::make_shared<MemoryTransport>(id, weak_from_this(), env_);
  return slot;
}

void NetworkCore::route(ServerId from, ServerId to, std::string frame) {
  std::optional<Accepted> accepted = accept(from, to);
  if (!accepted) {
    ++dropped_;
    return;
  }
  if (accepted->duplicate_delay) {
    ++duplicated_;
    post_delivery(*accepted, from, *accepted->duplicate_delay, frame);
  }
  post_delivery(*accepted, from, accepted->delay, std::move(frame));
}

void NetworkCore::post_delivery(const Accepted& accepted, ServerId from, Duration delay,
                                std::string frame) {
  // Both held weakly: the task must not keep the network or the transport
  // (and so its executor, which holds the task) alive.
  Task task = [network = weak_from_this(),
               weak_destination = std::weak_ptr<MemoryTransport>(accepted.destination), from,
               epoch = accepted.epoch, frame = std::move(frame)]() mutable {
    const std::shared_ptr<NetworkCore> self = network.lock();
    const std::shared_ptr<MemoryTransport> destination = weak_destination.lock();
    if (self && destination) self->deliver(*destination, from, epoch, std::move(frame));
  };
  const std::shared_ptr<Executor> executor = accepted.destination->executor();
  if (!executor) return;  // never started: accept() refused it already
  if (delay == Duration::zero()) {
    executor->post(std::move(task));
  } else {
    executor->post_after(delay, std::move(task));
  }
}

// The send-time checks of step 1 (see the top of this file); on success the
// frame counts against the destination's in-flight bound.
std::optional<NetworkCore::Accepted> NetworkCore::accept(ServerId from, ServerId to) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = transports_.find(to);
  if (found == transports_.end()) return std::nullopt;
  if (!reachability_.can_reach(from, to) || draw_probability(drop_rate_)) return std::nullopt;
  MemoryTransport& destination = *found->second;
  const std::optional<std::uint64_t> epoch = destination.gate().epoch();
  if (!epoch) return std::nullopt;
  if (destination.inflight_frames() >= InMemoryNetwork::kMaxInflightFramesPerDestination) {
    return std::nullopt;
  }
  ++destination.inflight_frames();
  Accepted accepted{found->second, *epoch, draw_delay(), std::nullopt};
  if (draw_probability(duplicate_rate_) &&
      destination.inflight_frames() < InMemoryNetwork::kMaxInflightFramesPerDestination) {
    ++destination.inflight_frames();
    accepted.duplicate_delay = draw_delay();
  }
  return accepted;
}

bool NetworkCore::draw_probability(double rate) {
  // No draw at rate 0, so that a network without faults consumes no
  // randomness (runs that differ only in fault settings stay comparable).
  if (rate <= 0.0) return false;
  // 53 random bits make a double uniform in [0, 1), so a rate of 1 always hits.
  const double draw = static_cast<double>(prng_.next() >> 11) * 0x1.0p-53;
  return draw < rate;
}

Duration NetworkCore::draw_delay() {
  if (delay_high_ == delay_low_) return delay_low_;
  const auto span = static_cast<std::uint64_t>((delay_high_ - delay_low_).count());
  return delay_low_ + Duration(static_cast<Duration::rep>(prng_.uniform(0, span + 1)));
}

void NetworkCore::deliver(MemoryTransport& destination, ServerId from, std::uint64_t epoch,
                          std::string frame) {
  --destination.inflight_frames();
  const bool delivered =
      can_reach(from, destination.id()) && destination.gate().deliver(epoch, std::move(frame));
  if (delivered) {
    ++delivered_;
  } else {
    ++dropped_;
  }
}

bool NetworkCore::can_reach(ServerId from, ServerId to) {
  std::lock_guard<std::mutex> lock(mutex_);
  return reachability_.can_reach(from, to);
}

// Stops every delivery executor (dropping frames in flight and waiting out a
// delivery in progress), then closes every gate so that receivers, and what
// they captured, are released even if a user still holds a transport.
void NetworkCore::close() {
  std::map<ServerId, std::shared_ptr<MemoryTransport>> transports;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    transports.swap(transports_);
  }
  for (auto& [id, transport] : transports) {
    transport->stop_own_executor();
    transport->stop();
  }
}

void NetworkCore::cut(ServerId from, ServerId to) {
  std::lock_guard<std::mutex> lock(mutex_);
  reachability_.cut(from, to);
}

void NetworkCore::isolate(ServerId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  reachability_.isolate(id);
}

void NetworkCore::partition(const std::vector<std::set<ServerId>>& groups) {
  std::lock_guard<std::mutex> lock(mutex_);
  reachability_.partition(groups);
}

void NetworkCore::heal() {
  std::lock_guard<std::mutex> lock(mutex_);
  reachability_.heal();
}

void NetworkCore::set_drop_rate(double rate) {
  KEEL_CHECK("drop rate is a probability", rate >= 0.0 && rate <= 1.0);
  std::lock_guard<std::mutex> lock(mutex_);
  drop_rate_ = rate;
}

void NetworkCore::set_duplicate_rate(double rate) {
  KEEL_CHECK("duplicate rate is a probability", rate >= 0.0 && rate <= 1.0);
  std::lock_guard<std::mutex> lock(mutex_);
  duplicate_rate_ = rate;
}

void NetworkCore::set_delay(Duration low, Duration high) {
  KEEL_CHECK("delay range is 0 <= low <= high", Duration::zero() <= low && low <= high);
  std::lock_guard<std::mutex> lock(mutex_);
  delay_low_ = low;
  delay_high_ = high;
}

}  // namespace

struct InMemoryNetwork::State {
  std::shared_ptr<NetworkCore> core;
};

InMemoryNetwork::InMemoryNetwork(std::shared_ptr<Env> env)
    : state_(std::make_shared<State>(State{std::make_shared<NetworkCore>(std::move(env))})) {}

InMemoryNetwork::~InMemoryNetwork() { state_->core->close(); }

std::shared_ptr<Transport> InMemoryNetwork::transport(ServerId id) {
  return state_->core->transport(id);
}

void InMemoryNetwork::cut(ServerId from, ServerId to) { state_->core->cut(from, to); }
void InMemoryNetwork::isolate(ServerId id) { state_->core->isolate(id); }
void InMemoryNetwork::partition(const std::vector<std::set<ServerId>>& groups) {
  state_->core->partition(groups);
}
void InMemoryNetwork::heal() { state_->core->heal(); }
void InMemoryNetwork::set_drop_rate(double rate) { state_->core->set_drop_rate(rate); }
void InMemoryNetwork::set_duplicate_rate(double rate) { state_->core->set_duplicate_rate(rate); }
void InMemoryNetwork::set_delay(Duration low, Duration high) { state_->core->set_delay(low, high); }
std::uint64_t InMemoryNetwork::delivered() const { return state_->core->delivered(); }
std::uint64_t InMemoryNetwork::dropped() const { return state_->core->dropped(); }
std::uint64_t InMemoryNetwork::duplicated() const { return state_->core->duplicated(); }

}  // namespace keel
