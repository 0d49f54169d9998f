// runtime/observer_hub.h — delivers observations to subscribers without ever
// making the raft loop wait for them.
//
// Each subscription has its own executor (a thread in production) and a
// bounded queue. publish() only appends to the queues; a slow or blocked
// observer loses its oldest queued observations (counted; kLeaderReady is
// kept while anything else can go), never the loop's time. So an observer may block, or call back into the Raft (even
// barrier().get()) without deadlocking it.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "keel/env.h"
#include "keel/raft.h"

namespace keel::runtime {

class ObserverHub {
 public:
  ObserverHub(std::shared_ptr<Env> env, std::size_t queue_capacity);

  std::uint64_t subscribe(std::function<void(const Observation&)> observer);
  // Stops delivery to the subscription; waits for a callback in progress
  // unless called from that callback.
  void unsubscribe(std::uint64_t id);
  void publish(const Observation& observation);
  void stop_all();
  std::uint64_t dropped() const;

 private:
  struct Subscription {
    std::function<void(const Observation&)> callback;
    std::shared_ptr<Executor> executor;
    std::mutex mutex;
    std::deque<Observation> queue;
    bool scheduled = false;
    std::uint64_t dropped = 0;
  };
  static void drain(const std::shared_ptr<Subscription>& subscription);
  static void drop_one(std::deque<Observation>& queue);

  std::shared_ptr<Env> env_;
  const std::size_t queue_capacity_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<Subscription>> subscriptions_;
  std::uint64_t next_id_ = 1;
  std::uint64_t dropped_by_removed_ = 0;
};

}  // namespace keel::runtime
