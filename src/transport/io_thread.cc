// transport/io_thread.cc — IoThread (transport/io_thread.h): the context,
// its thread, and the executors that run tasks on it.
//
// An executor is a lane on the thread, as in the thread Env: a task is
// posted to the context wrapped with its lane, and skipped if the lane has
// stopped by the time the thread reaches it. Timers of every lane wait in
// one queue ordered by (due time, posting order), behind one Asio timer
// armed for the earliest; the state they share outlives the IoThread, so
// that an executor can be posted to (a no-op) after the thread is gone.
#include "transport/io_thread.h"

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "runtime/executor_support.h"

namespace keel::transport {

namespace {

using Clock = std::chrono::steady_clock;
using TimerKey = runtime::TimerKey<Clock::time_point>;

// Linux limits thread names to 16 bytes including the terminating NUL.
constexpr std::size_t kThreadNameMaxChars = 15;

// One executor's share of the thread. Guarded by the state's mutex.
struct Lane {
  std::string name;
  bool stopped = false;
  bool running = false;  // a task of this lane runs now
};

struct Item {
  Task task;
  std::shared_ptr<Lane> lane;
};

}  // namespace

struct IoThreadState {
  std::mutex mutex;                   // guards the fields up to `timer`
  std::condition_variable task_done;  // a lane's running task finished
  // Null from stop() on: nothing is posted to the context any more.
  asio::io_context* io = nullptr;
  std::thread::id thread_id;
  std::map<TimerKey, Item> timers;
  std::uint64_t next_sequence = 0;

  // The I/O thread's alone (and stop()'s, after the join).
  std::unique_ptr<asio::steady_timer> timer;
  std::optional<Clock::time_point> armed;  // what `timer` waits for, if anything
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
};

namespace {

// On the I/O thread: runs `item` unless its lane stopped meanwhile.
void run_item(IoThreadState& state, Item item) {
  std::unique_lock lock(state.mutex);
  if (item.lane->stopped) {
    lock.unlock();
    item.task = nullptr;  // dropped: destroyed outside the lock, never run
    return;
  }
  item.lane->running = true;
  lock.unlock();
  runtime::run_task_or_abort("executor", item.lane->name, item.task);
  // Destroyed before relocking: its captures may post to or stop executors.
  item.task = nullptr;
  lock.lock();
  item.lane->running = false;
  state.task_done.notify_all();
}

void arm(const std::shared_ptr<IoThreadState>& state);

// On the I/O thread: runs every timer that is due, in order, then re-arms.
void fire_due(const std::shared_ptr<IoThreadState>& state) {
  std::vector<Item> due;
  {
    std::lock_guard lock(state->mutex);
    const Clock::time_point now = Clock::now();
    while (!state->timers.empty() && state->timers.begin()->first.due <= now) {
      due.push_back(std::move(state->timers.extract(state->timers.begin()).mapped()));
    }
  }
  for (Item& item : due) run_item(*state, std::move(item));
  arm(state);
}

// On the I/O thread: makes the Asio timer wait for the earliest timer.
void arm(const std::shared_ptr<IoThreadState>& state) {
  Clock::time_point earliest;
  {
    std::lock_guard lock(state->mutex);
    if (state->timers.empty() || state->io == nullptr) return;
    earliest = state->timers.begin()->first.due;
  }
  if (state->armed && *state->armed <= earliest) return;
  state->armed = earliest;
  // Moving the expiry cancels the wait for a later one (its handler sees
  // operation_aborted and does nothing).
  state->timer->expires_at(earliest);
  state->timer->async_wait([state](const asio::error_code& error) {
    if (error) return;
    state->armed.reset();
    fire_due(state);
  });
}

class IoExecutor final : public Executor {
 public:
  IoExecutor(std::shared_ptr<IoThreadState> state, const std::string& name)
      : state_(std::move(state)), lane_(std::make_shared<Lane>()) {
    lane_->name = name;
  }
  ~IoExecutor() override { stop(); }
  IoExecutor(const IoExecutor&) = delete;
  IoExecutor& operator=(const IoExecutor&) = delete;

  void post(Task task) override {
    std::lock_guard lock(state_->mutex);
    if (lane_->stopped || state_->io == nullptr) return;  // `task` dies after the unlock
    asio::post(*state_->io, [state = state_, item = Item{std::move(task), lane_}]() mutable {
      run_item(*state, std::move(item));
    });
  }

  void post_after(Duration delay, Task task) override {
    const Clock::time_point due = runtime::steady_due_time(Clock::now(), delay);
    std::lock_guard lock(state_->mutex);
    if (lane_->stopped || state_->io == nullptr) return;
    const TimerKey key{due, state_->next_sequence++};
    const bool earliest = state_->timers.empty() || key < state_->timers.begin()->first;
    state_->timers.emplace(key, Item{std::move(task), lane_});
    // The Asio timer belongs to the I/O thread: only a new earliest timer
    // needs it to move.
    if (earliest) asio::post(*state_->io, [state = state_] { arm(state); });
  }

  void stop() override {
    std::vector<Item> dropped;
    std::unique_lock lock(state_->mutex);
    if (!lane_->stopped) {
      lane_->stopped = true;
      for (auto it = state_->timers.begin(); it != state_->timers.end();) {
        if (it->second.lane == lane_) {
          dropped.push_back(std::move(it->second));
          it = state_->timers.erase(it);
        } else {
          ++it;
        }
      }
    }
    // From the I/O thread the lane's running task, if any, is the caller:
    // waiting would deadlock. Tasks still queued in the context are skipped
    // when the thread reaches them.
    if (std::this_thread::get_id() != state_->thread_id) {
      state_->task_done.wait(lock, [&] { return !lane_->running; });
    }
    lock.unlock();
    // `dropped` dies here, outside the lock.
  }

 private:
  std::shared_ptr<IoThreadState> state_;
  std::shared_ptr<Lane> lane_;
};

}  // namespace

IoThread::IoThread(std::string name)
    : state_(std::make_shared<IoThreadState>()),
      // The default concurrency hint, not 1: with 1, Asio queues a post made
      // on the I/O thread privately until the running handler returns, so a
      // later post from another thread would run first, and an executor's
      // tasks would not run in the order they were posted.
      io_(std::make_unique<asio::io_context>()),
      name_(std::move(name)) {
  state_->io = io_.get();
  state_->timer = std::make_unique<asio::steady_timer>(*io_);
  state_->work.emplace(asio::make_work_guard(*io_));
}

IoThread::~IoThread() {
  stop();
  // Handlers never run (the executors' tasks among them) are destroyed with
  // the context, here.
  io_.reset();
}

asio::io_context& IoThread::context() { return *io_; }

void IoThread::start() {
  thread_ = std::thread([state = state_, io = io_.get(), name = name_] {
    pthread_setname_np(pthread_self(), name.substr(0, kThreadNameMaxChars).c_str());
    {
      std::lock_guard lock(state->mutex);
      state->thread_id = std::this_thread::get_id();
    }
    io->run();
  });
}

void IoThread::stop() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->io == nullptr) return;
    state_->io = nullptr;
  }
  io_->stop();
  if (thread_.joinable()) thread_.join();
  // Only this thread touches them now; they go before the context does.
  state_->timer.reset();
  state_->work.reset();
  std::map<TimerKey, Item> timers;
  {
    std::lock_guard lock(state_->mutex);
    timers.swap(state_->timers);
  }
  // `timers` dies here, outside the lock: the tasks' captures may post to
  // or stop executors.
}

bool IoThread::on_thread() const {
  std::lock_guard lock(state_->mutex);
  return std::this_thread::get_id() == state_->thread_id;
}

std::shared_ptr<Executor> IoThread::make_executor(const std::string& name) {
  return std::make_shared<IoExecutor>(state_, name);
}

}  // namespace keel::transport
