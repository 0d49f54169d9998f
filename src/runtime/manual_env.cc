// runtime/manual_env.cc — the deterministic Env the simulator runs on
// (DESIGN §2.2, "Execution model").
//
// Every executor is a FIFO of ready tasks; all executors share one timer
// queue ordered by (due time, posting sequence). The driving thread calls
// run_one(), which first moves the timers due at the current virtual time to
// their executors' FIFOs and then lets a seeded PRNG pick which executor with a
// ready task goes next. Serial order within an executor is kept (the Executor
// contract); the order *between* executors is what the seed explores, as
// threads would. Virtual time moves only when the driver says so.
//
// Executors share the scheduler's state through a shared_ptr, so an executor
// may outlive its ManualEnv; once the env is gone, posting is a no-op.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <keel/env.h>

#include "core/check.h"
#include "core/prng.h"
#include "runtime/executor_support.h"

namespace keel {
namespace {

// How many tasks may run without virtual time moving before advance() and
// run_until() give up. A task that re-posts itself with post() instead of
// post_after() would otherwise freeze virtual time and hang the simulation;
// a million is far above anything a healthy cluster runs at one instant.
constexpr std::size_t kMaxTasksPerInstant = 1'000'000;

struct ManualQueue {
  explicit ManualQueue(std::string executor_name) : name(std::move(executor_name)) {}

  const std::string name;
  std::deque<Task> ready;
  bool stopped = false;
};

using TimerKey = runtime::TimerKey<Duration>;

struct Timer {
  std::shared_ptr<ManualQueue> queue;
  Task task;
};

// Tasks taken out of the scheduler under its lock, destroyed after the unlock:
// their captures may post (which takes the lock) or destroy executors.
struct DroppedTasks {
  std::vector<Task> tasks;
  std::vector<Timer> timers;
};

// The scheduler proper. Single-threaded by contract, yet every member takes
// the mutex: a test thread that posts while the driver runs must not corrupt
// the queues, and the lock is uncontended in the normal case.
class ManualScheduler {
 public:
  explicit ManualScheduler(std::uint64_t seed) {
    // Two independent streams, so that components asking for seeds do not
    // shift the scheduling choices, and vice versa.
    core::Prng master(seed);
    scheduler_prng_ = core::Prng(master.next());
    seed_prng_ = core::Prng(master.next());
  }

  Duration now() {
    std::lock_guard lock(mutex_);
    return now_;
  }

  std::uint64_t random_seed() {
    std::lock_guard lock(mutex_);
    return seed_prng_.next();
  }

  std::uint64_t tasks_run() {
    std::lock_guard lock(mutex_);
    return tasks_run_;
  }

  std::shared_ptr<ManualQueue> add_queue(const std::string& name) {
    auto queue = std::make_shared<ManualQueue>(name);
    std::lock_guard lock(mutex_);
    queue->stopped = !env_alive_;
    if (env_alive_) queues_.push_back(queue);
    return queue;
  }

  void post(ManualQueue& queue, Task task) {
    std::lock_guard lock(mutex_);
    if (!env_alive_ || queue.stopped) return;  // `task` dies after the unlock
    queue.ready.push_back(std::move(task));
  }

  void post_after(const std::shared_ptr<ManualQueue>& queue, Duration delay, Task task) {
    std::lock_guard lock(mutex_);
    if (!env_alive_ || queue->stopped) return;
    // A negative delay counts as zero; a huge one saturates, not overflows.
    const Duration due = now_ + std::clamp(delay, Duration::zero(), Duration::max() - now_);
    const TimerKey key{due, next_sequence_++};
    timers_.emplace(key, Timer{queue, std::move(task)});
  }

  // Drops the queue's ready tasks and timers and unregisters it.
  void stop(const std::shared_ptr<ManualQueue>& queue) {
    DroppedTasks dropped;
    std::lock_guard lock(mutex_);
    if (queue->stopped) return;
    queue->stopped = true;
    take_tasks_of(*queue, dropped);
    std::erase(queues_, queue);
    // `lock` is released before `dropped` is destroyed (reverse declaration order).
  }

  // The env is being destroyed: drop everything; later posts are no-ops.
  void shut_down() {
    DroppedTasks dropped;
    std::lock_guard lock(mutex_);
    env_alive_ = false;
    for (const auto& queue : queues_) {
      queue->stopped = true;
      take_tasks_of(*queue, dropped);
    }
    queues_.clear();
  }

  // See ManualEnv::run_one.
  bool run_one() {
    std::unique_lock lock(mutex_);
    release_due_timers();
    ManualQueue* queue = pick_runnable_queue();
    if (queue == nullptr) return false;
    Task task = std::move(queue->ready.front());
    queue->ready.pop_front();
    ++tasks_run_;
    const std::string name = queue->name;  // the task may stop and free the queue
    lock.unlock();
    runtime::run_task_or_abort("manual executor", name, task);
    task = nullptr;  // destroyed unlocked: its captures may post or stop executors
    return true;
  }

  std::optional<Duration> next_timer_due() {
    std::lock_guard lock(mutex_);
    if (timers_.empty()) return std::nullopt;
    return timers_.begin()->first.due;
  }

  void jump_to(Duration time) {
    std::lock_guard lock(mutex_);
    KEEL_CHECK("virtual time never moves backwards", time >= now_);
    now_ = time;
  }

 private:
  // Moves the timers due by now to their executors' FIFOs, in (due, sequence)
  // order, so a timer never overtakes an earlier one on the same executor.
  void release_due_timers() {
    while (!timers_.empty() && timers_.begin()->first.due <= now_) {
      auto node = timers_.extract(timers_.begin());
      node.mapped().queue->ready.push_back(std::move(node.mapped().task));
    }
  }

  // Seeded uniform choice among executors with a ready task, in creation
  // order, so a seed replays the same interleaving.
  ManualQueue* pick_runnable_queue() {
    std::size_t runnable = 0;
    for (const auto& queue : queues_) runnable += queue->ready.empty() ? 0 : 1;
    if (runnable == 0) return nullptr;
    std::size_t chosen = scheduler_prng_.uniform(0, runnable);
    for (const auto& queue : queues_) {
      if (queue->ready.empty()) continue;
      if (chosen == 0) return queue.get();
      --chosen;
    }
    return nullptr;  // unreachable: `chosen` < `runnable`
  }

  void take_tasks_of(ManualQueue& queue, DroppedTasks& dropped) {
    for (auto& task : queue.ready) dropped.tasks.push_back(std::move(task));
    queue.ready.clear();
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second.queue.get() != &queue) {
        ++it;
        continue;
      }
      dropped.timers.push_back(std::move(it->second));
      it = timers_.erase(it);
    }
  }

  std::mutex mutex_;
  bool env_alive_ = true;
  Duration now_{0};
  core::Prng scheduler_prng_{0};
  core::Prng seed_prng_{0};
  std::uint64_t next_sequence_ = 0;
  std::uint64_t tasks_run_ = 0;
  std::vector<std::shared_ptr<ManualQueue>> queues_;  // live executors, creation order
  std::map<TimerKey, Timer> timers_;
};

class ManualExecutor final : public Executor {
 public:
  ManualExecutor(std::shared_ptr<ManualScheduler> scheduler, std::shared_ptr<ManualQueue> queue)
      : scheduler_(std::move(scheduler)), queue_(std::move(queue)) {}
  ~ManualExecutor() override { stop(); }
  ManualExecutor(const ManualExecutor&) = delete;
  ManualExecutor& operator=(const ManualExecutor&) = delete;

  void post(Task task) override { scheduler_->post(*queue_, std::move(task)); }
  void post_after(Duration delay, Task task) override {
    scheduler_->post_after(queue_, delay, std::move(task));
  }
  void stop() override { scheduler_->stop(queue_); }

 private:
  std::shared_ptr<ManualScheduler> scheduler_;
  std::shared_ptr<ManualQueue> queue_;
};

// Runs everything runnable at the current instant; aborts on a livelock
// (see kMaxTasksPerInstant).
void run_instant(ManualEnv& env) {
  const std::size_t tasks = env.run_until_idle(kMaxTasksPerInstant);
  KEEL_CHECK("virtual time advances: fewer than kMaxTasksPerInstant tasks run at one instant",
             tasks < kMaxTasksPerInstant);
}

}  // namespace

// ManualEnv's state is the scheduler; the derived type exists only because
// the header declares ManualEnv::State.
struct ManualEnv::State : ManualScheduler {
  using ManualScheduler::ManualScheduler;
};

ManualEnv::ManualEnv(std::uint64_t seed) : state_(std::make_shared<State>(seed)) {}

ManualEnv::~ManualEnv() { state_->shut_down(); }

Duration ManualEnv::now() const { return state_->now(); }

std::shared_ptr<Executor> ManualEnv::make_executor(const std::string& name) {
  std::shared_ptr<ManualScheduler> scheduler = state_;
  return std::make_shared<ManualExecutor>(scheduler, scheduler->add_queue(name));
}

std::uint64_t ManualEnv::random_seed() { return state_->random_seed(); }

bool ManualEnv::run_one() { return state_->run_one(); }

std::size_t ManualEnv::run_until_idle(std::size_t max_tasks) {
  std::size_t tasks = 0;
  while (tasks < max_tasks && run_one()) ++tasks;
  return tasks;
}

void ManualEnv::advance(Duration delay) {
  KEEL_CHECK("ManualEnv::advance moves time forward", delay >= Duration::zero());
  const Duration target = now() + delay;
  run_instant(*this);
  for (auto due = state_->next_timer_due(); due && *due <= target; due = state_->next_timer_due()) {
    state_->jump_to(*due);
    run_instant(*this);
  }
  state_->jump_to(target);
  run_instant(*this);
}

bool ManualEnv::run_until(const std::function<bool()>& done, Duration limit) {
  KEEL_CHECK("ManualEnv::run_until limit is not negative", limit >= Duration::zero());
  const Duration deadline = now() + limit;
  std::size_t tasks_this_instant = 0;
  while (!done()) {
    if (run_one()) {
      KEEL_CHECK("virtual time advances: fewer than kMaxTasksPerInstant tasks run at one instant",
                 ++tasks_this_instant < kMaxTasksPerInstant);
      continue;
    }
    const std::optional<Duration> due = state_->next_timer_due();
    if (!due) return false;  // nothing left at all: done() can no longer change
    if (*due > deadline) {
      state_->jump_to(deadline);  // the whole limit passed
      return done();              // done() may depend on now()
    }
    state_->jump_to(*due);
    tasks_this_instant = 0;
  }
  return true;
}

std::uint64_t ManualEnv::tasks_run() const { return state_->tasks_run(); }

}  // namespace keel
