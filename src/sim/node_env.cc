// NodeEnv (sim/node_env.h): how one machine's executors sit on the shared
// ManualEnv.
//
// Each executor of a NodeEnv wraps an executor of the ManualEnv. Every task
// goes through the ManualEnv (so the seeded scheduler interleaves it with
// every other machine's) wrapped in a "run or hold" step: when it comes up
// while the machine is paused -- or while earlier held tasks wait -- it joins
// the executor's held queue instead of running. resume() first reorders the
// held queue (ReleaseOrder: timers may move behind posts that came up after
// them, never posts behind posts or timers behind timers), then posts a drain
// task that runs the held tasks one per scheduling step; tasks that come up
// while the queue drains join its back. So posting order and due order
// survive any pattern of pauses, as the Executor contract promises.
//
// Tasks hold their executor's state weakly: the state owns the ManualEnv
// executor, which owns the tasks, and a strong reference would make a cycle
// that outlives the server.
#include "sim/node_env.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>

#include "core/check.h"

namespace keel::sim {

// --- NodeClock ------------------------------------------------------------------

NodeClock::NodeClock(const std::shared_ptr<ManualEnv>& base, Duration offset)
    : base_(base), base_anchor_(base->now()), local_anchor_(offset + base->now()) {}

Duration NodeClock::base_now() const {
  const std::shared_ptr<ManualEnv> base = base_.lock();
  return base ? base->now() : base_anchor_;
}

Duration NodeClock::now() const {
  const Duration elapsed = base_now() - base_anchor_;
  if (rate_ == 1.0) return local_anchor_ + elapsed;
  return local_anchor_ + Duration(static_cast<Duration::rep>(
                             std::llround(static_cast<double>(elapsed.count()) * rate_)));
}

void NodeClock::set_rate(double rate) {
  KEEL_CHECK("a clock runs forwards", rate > 0.0);
  local_anchor_ = now();
  base_anchor_ = base_now();
  rate_ = rate;
}

Duration NodeClock::to_base_delay(Duration local) const {
  if (local <= Duration::zero() || rate_ == 1.0) return local;
  // Far beyond any simulated run; keeps the conversion from overflowing.
  constexpr double kMaxDelayNanoseconds = 1e17;
  const double base = std::ceil(static_cast<double>(local.count()) / rate_);
  return Duration(static_cast<Duration::rep>(std::min(base, kMaxDelayNanoseconds)));
}

// --- executors ------------------------------------------------------------------

namespace {

struct LatencyRule {
  std::string prefix;
  Duration low{0};
  Duration high{0};
};

struct HeldTask {
  Task task;
  bool timer = false;  // came from post_after
};

struct ExecutorState {
  std::string name;
  std::shared_ptr<Executor> inner;  // null if born after kill()
  std::deque<HeldTask> held;
  bool drain_scheduled = false;
  bool stopped = false;
  Duration latency_low{0};
  Duration latency_high{0};
  Duration last_due{0};  // virtual time the last delayed post falls due
};

}  // namespace

struct NodeEnv::Shared {
  std::weak_ptr<ManualEnv> base;  // weakly: tasks hold Shared (see the top)
  std::shared_ptr<NodeClock> clock;
  std::function<void()> on_task;
  core::Prng latency_prng{0};
  core::Prng release_prng{0};
  bool paused = false;
  bool killed = false;
  std::vector<LatencyRule> latencies;
  std::vector<std::weak_ptr<ExecutorState>> executors;
};

namespace {

using Shared = NodeEnv::Shared;

void stop_state(ExecutorState& state) {
  if (state.stopped) return;
  state.stopped = true;
  std::deque<HeldTask> dropped;
  dropped.swap(state.held);
  if (state.inner) state.inner->stop();
  // `dropped` is destroyed here, after the state is consistent: a task's
  // captures may post or stop executors when they die.
}

void post_drain(const std::shared_ptr<Shared>& shared, const std::shared_ptr<ExecutorState>& state);

// Runs the oldest held task; re-posts itself while more wait.
void drain(const std::shared_ptr<Shared>& shared, const std::weak_ptr<ExecutorState>& weak) {
  const std::shared_ptr<ExecutorState> state = weak.lock();
  if (!state) return;
  state->drain_scheduled = false;
  if (state->stopped || shared->paused || state->held.empty()) return;
  Task task = std::move(state->held.front().task);
  state->held.pop_front();
  task();
  task = nullptr;
  if (shared->on_task) shared->on_task();
  if (!state->stopped && !shared->paused && !state->held.empty()) post_drain(shared, state);
}

void post_drain(const std::shared_ptr<Shared>& shared,
                const std::shared_ptr<ExecutorState>& state) {
  if (state->drain_scheduled || state->stopped || !state->inner) return;
  state->drain_scheduled = true;
  state->inner->post([shared, weak = std::weak_ptr<ExecutorState>(state)] { drain(shared, weak); });
}

void run_or_hold(const std::shared_ptr<Shared>& shared, const std::weak_ptr<ExecutorState>& weak,
                 Task& task, bool timer) {
  const std::shared_ptr<ExecutorState> state = weak.lock();
  if (!state || state->stopped) return;
  if (shared->paused || !state->held.empty()) {
    state->held.push_back(HeldTask{std::move(task), timer && shared->paused});
    if (!shared->paused) post_drain(shared, state);
    return;
  }
  task();
  task = nullptr;
  if (shared->on_task) shared->on_task();
}

class NodeExecutor final : public Executor {
 public:
  NodeExecutor(std::shared_ptr<Shared> shared, std::shared_ptr<ExecutorState> state)
      : shared_(std::move(shared)), state_(std::move(state)) {}
  ~NodeExecutor() override { stop(); }
  NodeExecutor(const NodeExecutor&) = delete;
  NodeExecutor& operator=(const NodeExecutor&) = delete;

  void post(Task task) override {
    const std::shared_ptr<ManualEnv> base = shared_->base.lock();
    if (state_->stopped || !base) return;
    const Duration now = base->now();
    Duration due = now;
    if (state_->latency_high > Duration::zero()) {
      const auto span =
          static_cast<std::uint64_t>((state_->latency_high - state_->latency_low).count());
      due += state_->latency_low +
             Duration(static_cast<Duration::rep>(shared_->latency_prng.uniform(0, span + 1)));
    }
    // Never before an earlier delayed post: equal due times run in posting
    // order, so FIFO holds even when the latency shrinks or is removed.
    due = std::max(due, state_->last_due);
    if (due == now) {
      state_->inner->post(wrap(std::move(task), /*timer=*/false));
      return;
    }
    state_->last_due = due;
    state_->inner->post_after(due - now, wrap(std::move(task), /*timer=*/false));
  }

  void post_after(Duration delay, Task task) override {
    if (state_->stopped) return;
    state_->inner->post_after(shared_->clock->to_base_delay(delay),
                              wrap(std::move(task), /*timer=*/true));
  }

  void stop() override { stop_state(*state_); }

 private:
  Task wrap(Task task, bool timer) const {
    return [shared = shared_, weak = std::weak_ptr<ExecutorState>(state_), task = std::move(task),
            timer]() mutable { run_or_hold(shared, weak, task, timer); };
  }

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<ExecutorState> state_;
};

// Reorders what a pause held (in the order it came up) into one the thread
// Env could produce after a stall: there a due timer joins the back of the
// queue when the thread next looks, so it follows every post that came up
// before it fell due, and may follow any number that came up after. Posts
// keep their order and timers theirs. kAsDue is the earliest placement of
// every timer, kTimersLast the latest, kMixed anything in between. A timer
// that came up while the executor was not paused (held only behind earlier
// held tasks) counts as a post: it was queued before the stall ended.
void reorder_held(std::deque<HeldTask>& held, ReleaseOrder order, core::Prng& prng) {
  if (order == ReleaseOrder::kAsDue) return;
  std::deque<HeldTask> in;
  in.swap(held);
  std::deque<HeldTask> timers;  // fallen due, not yet placed
  for (HeldTask& task : in) {
    if (task.timer) {
      timers.push_back(std::move(task));
      continue;
    }
    // Before this post, the thread may have looked at its timers and taken
    // some of those already due.
    while (order == ReleaseOrder::kMixed && !timers.empty() && prng.uniform(0, 2) == 0) {
      held.push_back(std::move(timers.front()));
      timers.pop_front();
    }
    held.push_back(std::move(task));
  }
  for (HeldTask& task : timers) held.push_back(std::move(task));
}

void apply_latency(const std::vector<LatencyRule>& rules, ExecutorState& state) {
  for (const LatencyRule& rule : rules) {
    if (state.name.rfind(rule.prefix, 0) == 0) {
      state.latency_low = rule.low;
      state.latency_high = rule.high;
    }
  }
}

}  // namespace

// --- NodeEnv ----------------------------------------------------------------------

NodeEnv::NodeEnv(const std::shared_ptr<ManualEnv>& base, std::shared_ptr<NodeClock> clock,
                 std::uint64_t seed, std::function<void()> on_task)
    : clock_(std::move(clock)), seeds_(seed), shared_(std::make_shared<Shared>()) {
  shared_->base = base;
  shared_->clock = clock_;
  shared_->on_task = std::move(on_task);
  shared_->latency_prng = core::Prng(seeds_.next());
  shared_->release_prng = core::Prng(seeds_.next());
}

NodeEnv::~NodeEnv() { kill(); }

std::shared_ptr<Executor> NodeEnv::make_executor(const std::string& name) {
  auto state = std::make_shared<ExecutorState>();
  state->name = name;
  const std::shared_ptr<ManualEnv> base = shared_->base.lock();
  if (shared_->killed || !base) {
    state->stopped = true;
  } else {
    state->inner = base->make_executor(name);
    apply_latency(shared_->latencies, *state);
    std::erase_if(shared_->executors, [](const auto& weak) { return weak.expired(); });
    shared_->executors.push_back(state);
  }
  return std::make_shared<NodeExecutor>(shared_, std::move(state));
}

void NodeEnv::pause() {
  if (!shared_->killed) shared_->paused = true;
}

void NodeEnv::resume(std::optional<ReleaseOrder> order) {
  if (!shared_->paused) return;
  shared_->paused = false;
  for (const auto& weak : shared_->executors) {
    auto state = weak.lock();
    if (!state || state->held.empty()) continue;
    const ReleaseOrder release =
        order ? *order : static_cast<ReleaseOrder>(shared_->release_prng.uniform(0, 3));
    reorder_held(state->held, release, shared_->release_prng);
    post_drain(shared_, state);
  }
}

bool NodeEnv::paused() const { return shared_->paused; }

void NodeEnv::set_latency(const std::string& prefix, Duration low, Duration high) {
  KEEL_CHECK("latency range is 0 <= low <= high", Duration::zero() <= low && low <= high);
  std::erase_if(shared_->latencies, [&](const LatencyRule& rule) { return rule.prefix == prefix; });
  shared_->latencies.push_back(LatencyRule{prefix, low, high});
  for (const auto& weak : shared_->executors) {
    if (auto state = weak.lock()) apply_latency(shared_->latencies, *state);
  }
}

void NodeEnv::kill() {
  if (shared_->killed) return;
  shared_->killed = true;
  shared_->paused = false;
  std::vector<std::shared_ptr<ExecutorState>> states;
  for (const auto& weak : shared_->executors) {
    if (auto state = weak.lock()) states.push_back(std::move(state));
  }
  shared_->executors.clear();
  for (const auto& state : states) stop_state(*state);
}

bool NodeEnv::killed() const { return shared_->killed; }

}  // namespace keel::sim
