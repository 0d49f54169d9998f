// runtime/observer_hub.h — delivers observations to subscribers without ever
// making a keel thread wait for them.
//
// Each subscription has its own executor (a thread in production) and a
// bounded queue. publish() only appends to the queues; a slow or blocked
// observer loses its oldest queued observations (counted; kLeaderReady is
// kept while anything else can go), never the loop's time. So an observer may
// block, or call back into the Raft (even barrier().get()) without
// deadlocking it.
//
// unsubscribe() never waits: it marks the subscription gone, so that no
// callback of it begins afterwards, and lets its executor stop itself once a
// callback in progress (if any) returns. A keel thread that unsubscribes
// from inside a then() callback therefore cannot be held up by an observer
// blocked on a future only that thread would resolve. wait_idle() is the
// only call that waits for callbacks, and only up to its timeout.
//
// A callback that throws is contained: the exception is counted
// (callback_failures()) and reported once through the logger, and delivery goes on.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "keel/env.h"
#include "keel/logger.h"
#include "keel/raft.h"

namespace keel::runtime {

class ObserverHub {
 public:
  // `logger` hears of the first callback that throws (null: stderr), with
  // `server` as the line's server.
  ObserverHub(std::shared_ptr<Env> env, std::size_t queue_capacity, std::size_t max_subscriptions,
              std::shared_ptr<Logger> logger = nullptr, ServerId server = ServerId{});
  ~ObserverHub();
  ObserverHub(const ObserverHub&) = delete;
  ObserverHub& operator=(const ObserverHub&) = delete;

  // ResourceExhausted once max_subscriptions are active; Shutdown after
  // stop_all().
  Result<std::uint64_t> subscribe(std::function<void(const Observation&)> observer);
  // After it returns, no callback of the subscription begins; one already
  // running (on its own thread, or the caller itself) finishes. Never waits.
  void unsubscribe(std::uint64_t id);
  void publish(const Observation& observation);
  // Unsubscribes everyone and refuses new subscriptions. Never waits.
  void stop_all();
  // Waits until no callback is running, at most `timeout`; true if none is.
  bool wait_idle(std::chrono::nanoseconds timeout);
  std::uint64_t dropped() const;
  std::uint64_t callback_failures() const;

  struct Shared;  // what subscriptions share with the hub (defined in the .cc)

 private:
  struct Subscription;
  static void drain(const std::shared_ptr<Subscription>& subscription);
  static void drop_one(std::deque<Observation>& queue);
  void retire(const std::shared_ptr<Subscription>& subscription);

  std::shared_ptr<Env> env_;
  const std::size_t queue_capacity_;
  const std::size_t max_subscriptions_;
  std::shared_ptr<Shared> shared_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<Subscription>> subscriptions_;
  std::uint64_t next_id_ = 1;
  std::uint64_t dropped_by_removed_ = 0;
  bool stopped_ = false;
};

}  // namespace keel::runtime
