// runtime/thread_env.cc — the production Env: one thread per executor and the
// steady clock (DESIGN §2.2).
//
// Each ThreadExecutor owns a std::thread that drains a FIFO of ready tasks and
// a timer queue ordered by (due time, posting sequence). The queue lives in a
// shared QueueState that the thread co-owns, so the thread can finish safely
// even when the Executor object is destroyed from inside one of its own tasks.

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
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

namespace keel {
namespace {

using Clock = std::chrono::steady_clock;

// Linux limits thread names to 16 bytes including the terminating NUL.
constexpr std::size_t kThreadNameMaxChars = 15;

struct TimerKey {
  Clock::time_point due;
  std::uint64_t sequence;  // posting order breaks ties between equal due times
  auto operator<=>(const TimerKey&) const = default;
};

// Everything the executor's thread touches; guarded by `mutex`.
struct QueueState {
  explicit QueueState(std::string executor_name) : name(std::move(executor_name)) {}

  const std::string name;
  std::mutex mutex;
  std::condition_variable wakeup;
  std::deque<Task> ready;
  std::map<TimerKey, Task> timers;
  std::uint64_t next_sequence = 0;
  bool stopped = false;
};

// A task that throws is a bug in keel or in a user callback; carrying on would
// leave whatever the task was updating half-done, so stop the process loudly.
void run_task_or_abort(const std::string& executor_name, Task& task) {
  try {
    task();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "keel: task on executor '%s' threw: %s\n", executor_name.c_str(),
                 error.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "keel: task on executor '%s' threw a non-std::exception\n",
                 executor_name.c_str());
    std::abort();
  }
}

// `now + delay`, with a negative delay counting as zero and a huge one (a
// "never" of Duration::max()) saturating instead of overflowing.
Clock::time_point due_time(Clock::time_point now, Duration delay) {
  const Duration headroom = Clock::time_point::max() - now;
  return now + std::clamp(delay, Duration::zero(), headroom);
}

// Moves every timer due at `now` to the ready queue, in (due, sequence) order.
void release_due_timers(QueueState& queue, Clock::time_point now) {
  while (!queue.timers.empty() && queue.timers.begin()->first.due <= now) {
    auto node = queue.timers.extract(queue.timers.begin());
    queue.ready.push_back(std::move(node.mapped()));
  }
}

// The executor thread's body. It owns `queue` jointly with the Executor, so it
// may outlive the Executor object (see ThreadExecutor::~ThreadExecutor).
void run_loop(const std::shared_ptr<QueueState>& queue) {
  pthread_setname_np(pthread_self(), queue->name.substr(0, kThreadNameMaxChars).c_str());
  std::unique_lock lock(queue->mutex);
  while (!queue->stopped) {
    release_due_timers(*queue, Clock::now());
    if (!queue->ready.empty()) {
      Task task = std::move(queue->ready.front());
      queue->ready.pop_front();
      lock.unlock();
      run_task_or_abort(queue->name, task);
      // Destroy the task before relocking: its captures may post to, stop or
      // even destroy this executor, all of which take the mutex.
      task = nullptr;
      lock.lock();
    } else if (queue->timers.empty()) {
      queue->wakeup.wait(lock);
    } else {
      // A copy: wait_until reads its deadline again after waking, and by then
      // stop() (or a task) may have erased the timer that held it.
      const auto due = queue->timers.begin()->first.due;
      queue->wakeup.wait_until(lock, due);
    }
  }
}

class ThreadExecutor final : public Executor {
 public:
  explicit ThreadExecutor(const std::string& name)
      : queue_(std::make_shared<QueueState>(name)),
        thread_([queue = queue_] { run_loop(queue); }),
        thread_id_(thread_.get_id()) {}

  ~ThreadExecutor() override {
    if (std::this_thread::get_id() != thread_id_) {
      stop();
      return;
    }
    // Destroyed by its own task (the task held the last reference). Joining
    // would deadlock and a joinable std::thread's destructor calls
    // std::terminate, so detach: the thread co-owns `queue_`, sees `stopped`
    // once the task returns, and exits on its own.
    drop_pending_and_refuse_more();
    thread_.detach();
  }

  ThreadExecutor(const ThreadExecutor&) = delete;
  ThreadExecutor& operator=(const ThreadExecutor&) = delete;

  // Both posts notify while still holding the lock: once it is released the
  // task may run and drop the last reference to this executor, so nothing
  // after the unlock may touch `this`. (A dropped `task` is destroyed after
  // the unlock, as the parameter outlives the lock_guard.)
  void post(Task task) override {
    std::lock_guard lock(queue_->mutex);
    if (queue_->stopped) return;
    queue_->ready.push_back(std::move(task));
    queue_->wakeup.notify_one();
  }

  void post_after(Duration delay, Task task) override {
    const Clock::time_point due = due_time(Clock::now(), delay);
    std::lock_guard lock(queue_->mutex);
    if (queue_->stopped) return;
    queue_->timers.emplace(TimerKey{due, queue_->next_sequence++}, std::move(task));
    queue_->wakeup.notify_one();
  }

  void stop() override {
    drop_pending_and_refuse_more();
    if (std::this_thread::get_id() == thread_id_) {
      return;  // joining ourselves would deadlock; the destructor joins or detaches
    }
    // Two threads may call stop() at once; std::thread::join is not safe to
    // call concurrently, so the first joins and the second waits for it.
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void drop_pending_and_refuse_more() {
    std::deque<Task> dropped_ready;
    std::map<TimerKey, Task> dropped_timers;
    {
      std::lock_guard lock(queue_->mutex);
      queue_->stopped = true;
      dropped_ready.swap(queue_->ready);
      dropped_timers.swap(queue_->timers);
    }
    queue_->wakeup.notify_one();
    // The dropped tasks die here, outside the lock: their captures may post
    // to this executor (a no-op now) or release other executors.
  }

  std::shared_ptr<QueueState> queue_;
  std::mutex join_mutex_;
  std::thread thread_;  // after queue_: the thread starts with queue_ already built
  const std::thread::id thread_id_;
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

  std::uint64_t random_seed() override { return seeds_.next(); }

 private:
  SeedSource seeds_;
};

}  // namespace

std::shared_ptr<Env> make_thread_env() { return std::make_shared<ThreadEnv>(); }

}  // namespace keel
