// A test helper for executors' tests (the thread Env's, the transport's I/O
// thread's): an object that sets a flag when destroyed, captured by a task
// to tell a dropped task (destroyed, never run) from one still queued.
#pragma once

#include <atomic>
#include <memory>
#include <utility>

namespace keel::testing {

struct DestructionFlag {
  explicit DestructionFlag(std::shared_ptr<std::atomic<bool>> destroyed_flag)
      : destroyed(std::move(destroyed_flag)) {}
  ~DestructionFlag() { destroyed->store(true); }
  DestructionFlag(const DestructionFlag&) = delete;
  DestructionFlag& operator=(const DestructionFlag&) = delete;
  std::shared_ptr<std::atomic<bool>> destroyed;
};

}  // namespace keel::testing
