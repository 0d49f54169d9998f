#include "runtime/observer_hub.h"

#include <exception>
#include <utility>
#include <vector>

namespace keel::runtime {

// Counts the callbacks running now (for wait_idle) and those that threw.
struct ObserverHub::Shared {
  std::mutex mutex;
  std::condition_variable idle;
  std::size_t running = 0;
  std::uint64_t failures = 0;
  std::shared_ptr<Logger> logger;  // set once, before any subscription
  ServerId server;                 // named in its lines
};

struct ObserverHub::Subscription {
  std::function<void(const Observation&)> callback;
  std::shared_ptr<Executor> executor;
  std::shared_ptr<Shared> shared;
  std::mutex mutex;  // guards the fields below
  std::deque<Observation> queue;
  bool scheduled = false;
  bool active = true;
  std::uint64_t dropped = 0;
};

ObserverHub::ObserverHub(std::shared_ptr<Env> env, std::size_t queue_capacity,
                         std::size_t max_subscriptions, std::shared_ptr<Logger> logger,
                         ServerId server)
    : env_(std::move(env)),
      queue_capacity_(queue_capacity),
      max_subscriptions_(max_subscriptions),
      shared_(std::make_shared<Shared>()) {
  shared_->logger = logger ? std::move(logger) : make_stderr_logger();
  shared_->server = server;
}

ObserverHub::~ObserverHub() { stop_all(); }

Result<std::uint64_t> ObserverHub::subscribe(std::function<void(const Observation&)> observer) {
  auto subscription = std::make_shared<Subscription>();
  subscription->callback = std::move(observer);
  subscription->shared = shared_;
  std::lock_guard lock(mutex_);
  if (stopped_) return Status::shutdown();
  if (subscriptions_.size() >= max_subscriptions_) {
    return Status::resource_exhausted("subscribe: max_subscriptions (" +
                                      std::to_string(max_subscriptions_) +
                                      ") subscriptions are active; each has a thread");
  }
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
    std::lock_guard sub_lock(subscription->mutex);
    dropped_by_removed_ += subscription->dropped;
  }
  retire(subscription);
}

// Marks the subscription gone and lets its executor stop itself from its own
// thread once whatever it runs now returns: stopping it from here would wait
// for that callback, which may wait for us.
void ObserverHub::retire(const std::shared_ptr<Subscription>& subscription) {
  std::shared_ptr<Executor> executor;
  {
    std::lock_guard lock(subscription->mutex);
    subscription->active = false;
    subscription->queue.clear();
    executor = std::move(subscription->executor);
  }
  if (!executor) return;
  Executor& raw = *executor;
  // The task holds the last reference: the executor is destroyed inside its
  // own task, which an Executor allows (env.h).
  raw.post([executor = std::move(executor)]() mutable { executor->stop(); });
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
  Shared& shared = *subscription->shared;
  for (;;) {
    Observation next;
    {
      std::lock_guard lock(subscription->mutex);
      if (!subscription->active || subscription->queue.empty()) {
        subscription->scheduled = false;
        return;
      }
      next = std::move(subscription->queue.front());
      subscription->queue.pop_front();
      // Counted as running before the subscription's lock is released, so
      // that unsubscribe() either stops this call from beginning or finds
      // it begun.
      std::lock_guard shared_lock(shared.mutex);
      ++shared.running;
    }
    try {
      subscription->callback(next);  // unlocked: the callback may do anything
    } catch (const std::exception& error) {
      bool first = false;
      {
        std::lock_guard lock(shared.mutex);
        first = shared.failures++ == 0;
      }
      if (first) {
        shared.logger->log(LogLevel::kWarn,
                           "an observer callback threw (counted, delivery goes on)",
                           {{"server", shared.server.value}, {"error", error.what()}});
      }
    } catch (...) {
      bool first = false;
      {
        std::lock_guard lock(shared.mutex);
        first = shared.failures++ == 0;
      }
      if (first) {
        shared.logger->log(LogLevel::kWarn,
                           "an observer callback threw (counted, delivery goes on)",
                           {{"server", shared.server.value}});
      }
    }
    {
      std::lock_guard lock(shared.mutex);
      --shared.running;
    }
    shared.idle.notify_all();
  }
}

void ObserverHub::stop_all() {
  std::map<std::uint64_t, std::shared_ptr<Subscription>> all;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    all.swap(subscriptions_);
    for (auto& [id, subscription] : all) {
      std::lock_guard sub_lock(subscription->mutex);
      dropped_by_removed_ += subscription->dropped;
    }
  }
  for (auto& [id, subscription] : all) retire(subscription);
}

bool ObserverHub::wait_idle(std::chrono::nanoseconds timeout) {
  std::unique_lock lock(shared_->mutex);
  return shared_->idle.wait_for(lock, timeout, [&] { return shared_->running == 0; });
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

std::uint64_t ObserverHub::callback_failures() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->failures;
}

}  // namespace keel::runtime
