// keel/future.h — the outcome of an asynchronous keel call.
//
// Every keel operation that waits on the cluster (apply, barrier,
// verify_leader, read, ...) returns a Future that resolves exactly once, with
// a value or a Status that says what happened (see status.h). Every such call
// takes a timeout that covers the whole operation, so a Future always
// resolves: at the latest at its deadline, or when the Raft shuts down.
//
// Thread safety: a Future may be copied and waited on from any number of
// threads. get() and wait_for() block the calling thread: call them from
// your own threads (an observer callback is one of yours: it has a thread of
// its own), never from inside a then() callback. then() callbacks run on the
// keel thread that resolves the future, or at once on the calling thread if
// it is already resolved; they must be short and must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "keel/status.h"

namespace keel {

namespace detail {

template <typename T>
struct FutureState {
  std::mutex mutex;
  std::condition_variable resolved_cv;
  std::optional<Result<T>> result;
  std::vector<std::function<void(const Result<T>&)>> callbacks;
};

}  // namespace detail

template <typename T>
class Future {
 public:
  // A future that is already resolved.
  static Future ready(Result<T> result) {
    Future future(std::make_shared<detail::FutureState<T>>());
    future.state_->result.emplace(std::move(result));
    return future;
  }

  bool is_ready() const {
    std::lock_guard lock(state_->mutex);
    return state_->result.has_value();
  }

  // Blocks until resolved. The reference stays valid while this Future, a
  // copy of it, or its Promise lives (a resolved result never changes).
  const Result<T>& get() const {
    std::unique_lock lock(state_->mutex);
    state_->resolved_cv.wait(lock, [&] { return state_->result.has_value(); });
    return *state_->result;
  }

  // Blocks until resolved or `timeout` passes (real time); true if resolved.
  template <typename Rep, typename Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    std::unique_lock lock(state_->mutex);
    return state_->resolved_cv.wait_for(lock, timeout, [&] { return state_->result.has_value(); });
  }

  // Runs `callback` exactly once, when resolved (see the threading note
  // above). Callbacks registered before resolution run in registration order.
  void then(std::function<void(const Result<T>&)> callback) const {
    std::unique_lock lock(state_->mutex);
    if (!state_->result) {
      state_->callbacks.push_back(std::move(callback));
      return;
    }
    lock.unlock();
    callback(*state_->result);  // resolved results never change: safe unlocked
  }

 private:
  template <typename U>
  friend class Promise;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}

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
    {
      std::lock_guard lock(state_->mutex);
      if (state_->result) return false;
      state_->result.emplace(std::move(result));
      callbacks.swap(state_->callbacks);
    }
    state_->resolved_cv.notify_all();
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
