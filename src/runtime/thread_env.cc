// runtime/thread_env.cc — the production Env: threads and the steady clock
// (DESIGN §2.2).
//
// A Worker is one thread with one FIFO of ready tasks and one timer queue
// ordered by (due time, posting sequence). Each executor is a lane on a
// worker: make_executor() starts a worker with one lane, and
// make_executor_sharing() adds a lane to an existing executor's worker, so
// that components that never block (a raft loop, a memory log writer, a
// cheap applier) hand work to each other without waking a thread. Lanes keep
// their own stop(): a stopped lane's tasks are dropped and never run.
//
// Wake-ups are the cost this file exists to avoid: a post signals the worker
// only when its thread is asleep; a thread that wakes runs every task that is
// ready (and every timer that fell due) before it sleeps again.
//
// The worker's state lives in a shared Worker that the thread co-owns, so the
// thread can finish safely even when its last executor is destroyed from
// inside one of its own tasks.

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <keel/env.h>

#include "core/prng.h"
#include "runtime/executor_support.h"

namespace keel {
namespace {

using Clock = std::chrono::steady_clock;

// Linux limits thread names to 16 bytes including the terminating NUL.
constexpr std::size_t kThreadNameMaxChars = 15;

using TimerKey = runtime::TimerKey<Clock::time_point>;

// One executor's share of a worker. Guarded by the worker's mutex.
struct Lane {
  std::string name;
  bool stopped = false;
  std::size_t running = 0;  // tasks of this lane running now (0 or 1)
};

struct Item {
  Task task;
  std::shared_ptr<Lane> lane;
};

// Everything a worker's thread touches; guarded by `mutex`.
struct Worker {
  explicit Worker(std::string worker_name) : name(std::move(worker_name)) {}

  const std::string name;
  std::mutex mutex;
  std::condition_variable wakeup;     // the thread waits here for work
  std::condition_variable task_done;  // stop() waits here for a lane's running task
  std::deque<Item> ready;
  std::map<TimerKey, Item> timers;
  std::uint64_t next_sequence = 0;
  std::size_t open_lanes = 0;  // lanes not stopped; the thread ends at zero
  bool sleeping = false;
  bool exited = false;
  std::condition_variable exited_cv;
  std::thread::id thread_id;
};

// Moves every timer due at `now` to the ready queue, in (due, sequence) order.
void release_due_timers(Worker& worker, Clock::time_point now) {
  while (!worker.timers.empty() && worker.timers.begin()->first.due <= now) {
    auto node = worker.timers.extract(worker.timers.begin());
    worker.ready.push_back(std::move(node.mapped()));
  }
}

// The worker thread's body. It co-owns `worker`, so it may outlive every
// executor of it.
void run_loop(const std::shared_ptr<Worker>& worker) {
  pthread_setname_np(pthread_self(), worker->name.substr(0, kThreadNameMaxChars).c_str());
  std::unique_lock lock(worker->mutex);
  while (worker->open_lanes > 0) {
    release_due_timers(*worker, Clock::now());
    if (!worker->ready.empty()) {
      Item item = std::move(worker->ready.front());
      worker->ready.pop_front();
      if (item.lane->stopped) {  // posted as its lane stopped: dropped, never run
        lock.unlock();
        item.task = nullptr;
        lock.lock();
        continue;
      }
      ++item.lane->running;
      lock.unlock();
      runtime::run_task_or_abort("executor", item.lane->name, item.task);
      // Destroy the task before relocking: its captures may post to, stop or
      // even destroy this executor, all of which take the mutex.
      item.task = nullptr;
      lock.lock();
      if (--item.lane->running == 0) worker->task_done.notify_all();
      continue;
    }
    worker->sleeping = true;
    if (worker->timers.empty()) {
      worker->wakeup.wait(lock);
    } else {
      // A copy: wait_until reads its deadline again after waking, and by then
      // a task may have erased the timer that held it.
      const auto due = worker->timers.begin()->first.due;
      worker->wakeup.wait_until(lock, due);
    }
    worker->sleeping = false;
  }
  worker->ready.clear();
  worker->timers.clear();
  worker->exited = true;
  worker->exited_cv.notify_all();
}

class ThreadExecutor final : public Executor {
 public:
  // A new worker with this as its first lane.
  explicit ThreadExecutor(const std::string& name)
      : worker_(std::make_shared<Worker>(name)), lane_(make_lane(name)) {
    worker_->open_lanes = 1;
    std::thread thread([worker = worker_] { run_loop(worker); });
    worker_->thread_id = thread.get_id();
    // The thread ends by itself once every lane is stopped; stop() waits for
    // that through `exited`, so nobody has to join it (and an executor
    // destroyed by its own task cannot join itself anyway).
    thread.detach();
  }

  // A new lane on `host`'s worker.
  ThreadExecutor(const std::string& name, const ThreadExecutor& host)
      : worker_(host.worker_), lane_(make_lane(name)) {
    std::lock_guard lock(worker_->mutex);
    if (worker_->open_lanes == 0) {
      lane_->stopped = true;  // the host's thread is gone: born stopped
    } else {
      ++worker_->open_lanes;
    }
  }

  ~ThreadExecutor() override { stop(); }
  ThreadExecutor(const ThreadExecutor&) = delete;
  ThreadExecutor& operator=(const ThreadExecutor&) = delete;

  void post(Task task) override {
    std::unique_lock lock(worker_->mutex);
    if (lane_->stopped) return;  // `task` dies after the unlock
    worker_->ready.push_back(Item{std::move(task), lane_});
    wake_if_asleep();
  }

  void post_after(Duration delay, Task task) override {
    const Clock::time_point due = runtime::steady_due_time(Clock::now(), delay);
    std::unique_lock lock(worker_->mutex);
    if (lane_->stopped) return;
    const TimerKey key{due, worker_->next_sequence++};
    const bool earliest = worker_->timers.empty() || key < worker_->timers.begin()->first;
    worker_->timers.emplace(key, Item{std::move(task), lane_});
    // A sleeping thread waits for the earliest timer it knew of: only a new
    // earliest one needs to wake it.
    if (earliest) wake_if_asleep();
  }

  void stop() override {
    std::vector<Item> dropped;
    std::unique_lock lock(worker_->mutex);
    if (!lane_->stopped) {
      lane_->stopped = true;
      take_lane_items(dropped);
      if (--worker_->open_lanes == 0) worker_->wakeup.notify_one();
    }
    if (std::this_thread::get_id() == worker_->thread_id) {
      // From a task on this worker: waiting would deadlock. The lane's own
      // running task (if any) is the caller.
    } else {
      worker_->task_done.wait(lock, [&] { return lane_->running == 0; });
      if (worker_->open_lanes == 0) {
        worker_->exited_cv.wait(lock, [&] { return worker_->exited; });
      }
    }
    lock.unlock();
    // `dropped` dies here, outside the lock: the tasks' captures may post to
    // this executor (a no-op now) or release other executors.
  }

  const std::shared_ptr<Worker>& worker() const { return worker_; }

 private:
  static std::shared_ptr<Lane> make_lane(const std::string& name) {
    auto lane = std::make_shared<Lane>();
    lane->name = name;
    return lane;
  }

  // Under the lock, with the post's item queued: wake the thread only if it
  // sleeps. A busy thread finds the item before it sleeps again.
  void wake_if_asleep() {
    if (worker_->sleeping) worker_->wakeup.notify_one();
  }

  void take_lane_items(std::vector<Item>& dropped) {
    auto& ready = worker_->ready;
    for (auto it = ready.begin(); it != ready.end();) {
      if (it->lane == lane_) {
        dropped.push_back(std::move(*it));
        it = ready.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = worker_->timers.begin(); it != worker_->timers.end();) {
      if (it->second.lane == lane_) {
        dropped.push_back(std::move(it->second));
        it = worker_->timers.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::shared_ptr<Worker> worker_;
  std::shared_ptr<Lane> lane_;
};

// SplitMix64 over a seed drawn once from std::random_device: components get
// distinct seeds without each one reading the OS entropy source.
class SeedSource {
 public:
  SeedSource() : prng_(draw_entropy()) {}

  std::uint64_t next() {
    std::lock_guard lock(mutex_);
    return prng_.next();
  }

 private:
  static std::uint64_t draw_entropy() {
    std::random_device device;
    const std::uint64_t high = device();
    return (high << 32) ^ device();
  }

  std::mutex mutex_;
  core::Prng prng_;
};

class ThreadEnv final : public Env {
 public:
  Duration now() const override {
    return std::chrono::duration_cast<Duration>(Clock::now().time_since_epoch());
  }

  std::shared_ptr<Executor> make_executor(const std::string& name) override {
    return std::make_shared<ThreadExecutor>(name);
  }

  std::shared_ptr<Executor> make_executor_sharing(const std::string& name,
                                                  Executor& host) override {
    if (auto* thread_host = dynamic_cast<ThreadExecutor*>(&host)) {
      return std::make_shared<ThreadExecutor>(name, *thread_host);
    }
    return make_executor(name);
  }

  std::uint64_t random_seed() override { return seeds_.next(); }

 private:
  SeedSource seeds_;
};

}  // namespace

std::shared_ptr<Env> make_thread_env() { return std::make_shared<ThreadEnv>(); }

}  // namespace keel
