// keel/future.h — the outcome of an asynchronous keel call.
//
// Every keel operation that waits on the cluster (apply, barrier,
// verify_leader, read, ...) returns a Future that resolves exactly once, with
// a value or a Status that says what happened (see status.h). Every such call
// takes a timeout that covers the whole operation, so a Future always
// resolves: at the latest at its deadline, or when the Raft shuts down.
//
//   keel::Result<keel::ApplyResult> r = raft->apply("set x 1", 2s).get();  // by value
//   raft->read(keel::Consistency::kLinearizable, 1s)
//       .then(my_executor, [](const keel::Result<keel::Index>& index) { ... });
//
// Thread safety: a Future may be copied and waited on from any number of
// threads. get(), wait_for() and wait_until() block the calling thread: call
// them from your own threads (an observer callback is one of yours: it has a
// thread of its own), never from inside a then() callback that runs on a
// keel thread. then(callback) runs the callback on the thread that resolves
// the future -- a keel thread (the raft loop or the applier; over TCP with
// ThreadPolicy::kShareWithTransport, the transport's I/O thread), where a
// slow callback holds up the Raft and its connections -- or at once on the
// calling thread if the future is already resolved; keep such callbacks
// short and non-blocking, or use then(executor, callback) to run them on an
// executor of your own. A callback must not throw: an exception that
// escapes it ends the process (keel cannot know what the callback left half
// done).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/env.h"
#include "keel/status.h"

namespace keel {

// The value of a future that only says "it happened": what then() returns
// for a callback that returns nothing.
struct Done {
  bool operator==(const Done&) const = default;
};

template <typename T>
class Future;
template <typename T>
class Promise;

namespace detail {

template <typename T>
struct FutureState {
  std::mutex mutex;
  std::condition_variable resolved_cv;
  std::optional<Result<T>> result;
  std::vector<std::function<void(const Result<T>&)>> callbacks;
  // Threads blocked in get/wait_*: resolve() wakes only if there are any.
  std::size_t waiters = 0;

  // Under the caller's lock on `mutex`: runs `wait_on_cv` (a wait on
  // resolved_cv) counted as a waiter, unless already resolved.
  template <typename Wait>
  bool wait(std::unique_lock<std::mutex>& /*held*/, Wait wait_on_cv) {
    if (result) return true;
    ++waiters;
    const bool resolved = wait_on_cv();
    --waiters;
    return resolved;
  }
};

// What a then() callback returning R makes of the chained future.
template <typename R>
struct ChainOf {
  using Value = R;
};
template <typename U>
struct ChainOf<Result<U>> {
  using Value = U;
};
template <>
struct ChainOf<void> {
  using Value = Done;
};

[[noreturn]] inline void invalid_future() {
  std::fputs("keel: a default-constructed (invalid) Future was used\n", stderr);
  std::abort();
}

}  // namespace detail

template <typename T>
class Future {
 public:
  // An invalid future: valid() is false and nothing else may be called.
  Future() = default;

  // A future that is already resolved.
  static Future ready(Result<T> result) {
    Future future(std::make_shared<detail::FutureState<T>>());
    future.state_->result.emplace(std::move(result));
    return future;
  }

  // Whether this future refers to an operation (false only when
  // default-constructed or moved from).
  bool valid() const { return state_ != nullptr; }

  bool is_ready() const {
    std::lock_guard lock(state().mutex);
    return state().result.has_value();
  }

  // Blocks until resolved. The reference stays valid while this Future (or a
  // copy of it) lives; on a temporary, the rvalue overload below returns the
  // result by value instead, so `auto r = raft->apply(...).get();` and
  // `const auto& r = raft->apply(...).get();` are both safe.
  const Result<T>& get() const& {
    block_until_resolved();
    return *state().result;
  }
  Result<T> get() && {
    block_until_resolved();
    return *state().result;
  }

  // Blocks until resolved or `timeout` passes (real time); true if resolved.
  template <typename Rep, typename Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    auto& s = state();
    std::unique_lock lock(s.mutex);
    return s.wait(lock, [&] {
      return s.resolved_cv.wait_for(lock, timeout, [&] { return s.result.has_value(); });
    });
  }

  // Blocks until resolved or `deadline` (on its own clock); true if resolved.
  template <typename Clock, typename ClockDuration>
  bool wait_until(std::chrono::time_point<Clock, ClockDuration> deadline) const {
    auto& s = state();
    std::unique_lock lock(s.mutex);
    return s.wait(lock, [&] {
      return s.resolved_cv.wait_until(lock, deadline, [&] { return s.result.has_value(); });
    });
  }

  // Runs `callback(result)` exactly once, when resolved, on the resolving
  // thread (see the threading note above). Callbacks registered before
  // resolution run in registration order. Returns a future of what the
  // callback returns: a U or a `Result<U>` gives a `Future<U>`, nothing gives a
  // `Future<Done>`.
  template <typename F>
  auto then(F callback) const {
    using R = std::invoke_result_t<F&, const Result<T>&>;
    using U = typename detail::ChainOf<R>::Value;
    Promise<U> chained;
    on_resolved([chained, callback = std::move(callback)](const Result<T>& result) mutable {
      run_chained(callback, chained, result);
    });
    return chained.future();
  }

  // As then(callback), but the callback runs as a task on `executor` (never
  // inline, never on a keel thread unless `executor` is one). The executor
  // must outlive the future's resolution; if it drops the task (stopped),
  // the chained future never resolves.
  template <typename F>
  auto then(std::shared_ptr<Executor> executor, F callback) const {
    using R = std::invoke_result_t<F&, const Result<T>&>;
    using U = typename detail::ChainOf<R>::Value;
    Promise<U> chained;
    on_resolved([executor = std::move(executor), chained,
                 callback = std::move(callback)](const Result<T>& result) mutable {
      executor->post([chained, callback = std::move(callback), result]() mutable {
        run_chained(callback, chained, result);
      });
    });
    return chained.future();
  }

 private:
  // Runs a then() callback and resolves the chained future with what it
  // returns (Done for nothing).
  template <typename F, typename U>
  static void run_chained(F& callback, Promise<U>& chained, const Result<T>& result) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, const Result<T>&>>) {
      callback(result);
      chained.resolve(Done{});
    } else {
      chained.resolve(callback(result));
    }
  }

  template <typename U>
  friend class Promise;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}

  detail::FutureState<T>& state() const {
    if (!state_) detail::invalid_future();
    return *state_;
  }

  void block_until_resolved() const {
    auto& s = state();
    std::unique_lock lock(s.mutex);
    s.wait(lock, [&] {
      s.resolved_cv.wait(lock, [&] { return s.result.has_value(); });
      return true;
    });
  }

  void on_resolved(std::function<void(const Result<T>&)> callback) const {
    std::unique_lock lock(state().mutex);
    if (!state().result) {
      state().callbacks.push_back(std::move(callback));
      return;
    }
    lock.unlock();
    callback(*state().result);  // resolved results never change: safe unlocked
  }

  std::shared_ptr<detail::FutureState<T>> state_;
};

// The writing end of a Future. Copies share one state; the first resolve()
// wins and later ones are ignored, so a deadline and a completion may race
// safely. A thread that resolves should hold its own copy (capture it by
// value): resolve() still wakes waiters after the result is visible, so a
// waiter that destroys the only Promise as soon as get() returns would pull the
// state out from under a resolver working through a reference.
template <typename T>
class Promise {
 public:
  Promise() : state_(std::make_shared<detail::FutureState<T>>()) {}

  Future<T> future() const { return Future<T>(state_); }

  // Returns true if this call resolved the future.
  bool resolve(Result<T> result) const {
    std::vector<std::function<void(const Result<T>&)>> callbacks;
    bool waited_on = false;
    {
      std::lock_guard lock(state_->mutex);
      if (state_->result) return false;
      state_->result.emplace(std::move(result));
      callbacks.swap(state_->callbacks);
      waited_on = state_->waiters > 0;
    }
    // Only a thread that waits is woken; nobody else pays for a broadcast.
    if (waited_on) state_->resolved_cv.notify_all();
    for (auto& callback : callbacks) callback(*state_->result);
    return true;
  }

  bool is_resolved() const {
    std::lock_guard lock(state_->mutex);
    return state_->result.has_value();
  }

 private:
  std::shared_ptr<detail::FutureState<T>> state_;
};

}  // namespace keel
