// sim/node_env.h — one simulated machine's view of the simulator's single
// ManualEnv: its own clock (which may drift), its own executors (which the
// nemesis can pause, slow down or kill), and its own stream of random seeds.
//
// Every server of a simulated cluster runs on one ManualEnv (one thread,
// virtual time, seeded scheduling; DESIGN §2.2). A server is handed a NodeEnv
// instead of the ManualEnv itself, so that faults can hit one machine:
//
//  - pause():  tasks of this machine's executors that come due are held back
//              and released by resume() (a stopped VM, a GC pause, a loop
//              stuck in a slow call). Frames keep arriving meanwhile, as they
//              would queue in a socket buffer. What resume() releases, an
//              executor runs in an order the thread Env could produce after
//              such a stall (ReleaseOrder): posted tasks always in posting
//              order and timers in due order, but timers that fell due
//              during the stall anywhere among the posts -- typically after
//              all of them, as a thread that wakes from a stall releases its
//              due timers to the back of its queue.
//  - drift:    now() runs at NodeClock::rate() relative to virtual time, and
//              post_after() delays are stretched to match, so every timeout
//              the server measures is measured on its own clock.
//  - latency:  tasks posted to executors whose name starts with a prefix
//              (the log writer "keel-writer", the applier "keel-apply") wait
//              a random time first, in FIFO order: a slow disk, a slow FSM.
//  - kill():   every executor made so far stops and drops its tasks: the
//              machine crashed, and its in-flight work is gone.
//
// A NodeEnv lives for one incarnation of a server; a restart gets a new one
// that shares the NodeClock (a machine's clock survives its process).
//
// Thread safety: none beyond the ManualEnv's: one thread drives the
// simulation, and everything here runs on it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/prng.h"
#include "keel/env.h"

namespace keel::sim {

// A machine's clock: local time advances at rate() times virtual time.
// Changing the rate keeps the clock continuous, so it stays monotonic.
class NodeClock {
 public:
  // `offset` is the local time at virtual time zero (machines' clocks have
  // arbitrary epochs; nothing may compare them across machines). The clock
  // holds the ManualEnv weakly (tasks that hold the clock live in the
  // ManualEnv's queues); once the ManualEnv is gone, time stands still.
  NodeClock(const std::shared_ptr<ManualEnv>& base, Duration offset);

  Duration now() const;
  double rate() const { return rate_; }
  // Requires rate > 0.
  void set_rate(double rate);
  // The virtual (base) delay after which `local` has passed on this clock.
  Duration to_base_delay(Duration local) const;

 private:
  Duration base_now() const;

  std::weak_ptr<ManualEnv> base_;
  Duration base_anchor_{0};
  Duration local_anchor_{0};
  double rate_ = 1.0;
};

// How resume() interleaves, per executor, the posted tasks and the timers
// that were held during a pause. Each keeps its own order.
enum class ReleaseOrder : std::uint8_t {
  kAsDue,       // as they came due (a timer before the posts that followed it)
  kTimersLast,  // every held post first, then the held timers
  kMixed,       // a random interleaving
};

class NodeEnv final : public Env, public std::enable_shared_from_this<NodeEnv> {
 public:
  // `on_task` runs after each task of this machine (the simulator checks
  // the server's invariants then). The ManualEnv is held weakly: servers
  // hold their Env, and the ManualEnv's queues hold tasks that hold servers.
  NodeEnv(const std::shared_ptr<ManualEnv>& base, std::shared_ptr<NodeClock> clock,
          std::uint64_t seed, std::function<void()> on_task);
  ~NodeEnv() override;
  NodeEnv(const NodeEnv&) = delete;
  NodeEnv& operator=(const NodeEnv&) = delete;

  Duration now() const override { return clock_->now(); }
  std::shared_ptr<Executor> make_executor(const std::string& name) override;
  std::uint64_t random_seed() override { return seeds_.next(); }
  bool driven_by_caller() const override { return true; }

  void pause();
  // Releases what the pause held, each executor in `order`, or in an order
  // drawn from the NodeEnv's seed when none is given.
  void resume(std::optional<ReleaseOrder> order = std::nullopt);
  bool paused() const;
  // Tasks posted to executors whose name starts with `prefix` (made before or
  // after this call) wait a delay drawn from [low, high] of virtual time
  // before they may run; FIFO order per executor is kept. low = high = 0
  // removes the latency.
  void set_latency(const std::string& prefix, Duration low, Duration high);
  // Stops every executor (dropping their tasks, held ones included); later
  // executors are born stopped. Irreversible.
  void kill();
  bool killed() const;

  struct Shared;  // state shared with the executors (defined in the .cc)

 private:
  std::shared_ptr<NodeClock> clock_;
  core::Prng seeds_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace keel::sim
