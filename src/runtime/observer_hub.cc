#include "runtime/observer_hub.h"

#include <utility>
#include <vector>

namespace keel::runtime {

ObserverHub::ObserverHub(std::shared_ptr<Env> env, std::size_t queue_capacity)
    : env_(std::move(env)), queue_capacity_(queue_capacity) {}

std::uint64_t ObserverHub::subscribe(std::function<void(const Observation&)> observer) {
  auto subscription = std::make_shared<Subscription>();
  subscription->callback = std::move(observer);
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  subscription->executor = env_->make_executor("keel-obs-" + std::to_string(id));
  subscriptions_.emplace(id, std::move(subscription));
  return id;
}

void ObserverHub::unsubscribe(std::uint64_t id) {
  std::shared_ptr<Subscription> subscription;
  {
    std::lock_guard lock(mutex_);
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    subscription = std::move(it->second);
    subscriptions_.erase(it);
  }
  subscription->executor->stop();
  std::lock_guard lock(mutex_);
  std::lock_guard sub_lock(subscription->mutex);
  dropped_by_removed_ += subscription->dropped;
}

void ObserverHub::publish(const Observation& observation) {
  std::lock_guard lock(mutex_);
  for (auto& [id, subscription] : subscriptions_) {
    std::lock_guard sub_lock(subscription->mutex);
    if (subscription->queue.size() >= queue_capacity_) {
      drop_one(subscription->queue);
      ++subscription->dropped;
    }
    subscription->queue.push_back(observation);
    if (!subscription->scheduled) {
      subscription->scheduled = true;
      subscription->executor->post([subscription = subscription] { drain(subscription); });
    }
  }
}

void ObserverHub::drop_one(std::deque<Observation>& queue) {
  // The oldest observation goes, unless it says "leader ready": that one is
  // what applications wait for before serving reads, and a later state change
  // does not repeat it. Drop the oldest other observation instead.
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it->kind != Observation::Kind::kLeaderReady) {
      queue.erase(it);
      return;
    }
  }
  queue.pop_front();  // nothing but readiness: the oldest is the stalest
}

void ObserverHub::drain(const std::shared_ptr<Subscription>& subscription) {
  for (;;) {
    Observation next;
    {
      std::lock_guard lock(subscription->mutex);
      if (subscription->queue.empty()) {
        subscription->scheduled = false;
        return;
      }
      next = std::move(subscription->queue.front());
      subscription->queue.pop_front();
    }
    subscription->callback(next);  // unlocked: the callback may do anything
  }
}

void ObserverHub::stop_all() {
  std::map<std::uint64_t, std::shared_ptr<Subscription>> all;
  {
    std::lock_guard lock(mutex_);
    all = subscriptions_;
  }
  for (auto& [id, subscription] : all) unsubscribe(id);
}

std::uint64_t ObserverHub::dropped() const {
  std::lock_guard lock(mutex_);
  std::uint64_t total = dropped_by_removed_;
  for (const auto& [id, subscription] : subscriptions_) {
    std::lock_guard sub_lock(subscription->mutex);
    total += subscription->dropped;
  }
  return total;
}

}  // namespace keel::runtime
