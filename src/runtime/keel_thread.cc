#include "runtime/keel_thread.h"

#include <utility>

namespace keel::runtime {

namespace {

// The one piece of thread-local state in keel: it describes the thread, not
// any server; set for the duration of one task, or for good on a thread that
// runs nothing but keel tasks (mark_threads_of).
thread_local int keel_task_depth = 0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

Task marked(Task task) {
  return [task = std::move(task)] {
    ++keel_task_depth;
    task();
    --keel_task_depth;
  };
}

class MarkedExecutor final : public Executor {
 public:
  explicit MarkedExecutor(std::shared_ptr<Executor> inner) : inner_(std::move(inner)) {}
  void post(Task task) override { inner_->post(marked(std::move(task))); }
  void post_after(Duration delay, Task task) override {
    inner_->post_after(delay, marked(std::move(task)));
  }
  void stop() override { inner_->stop(); }

 private:
  std::shared_ptr<Executor> inner_;
};

class MarkedEnv final : public Env {
 public:
  explicit MarkedEnv(std::shared_ptr<Env> inner) : inner_(std::move(inner)) {}
  Duration now() const override { return inner_->now(); }
  std::shared_ptr<Executor> make_executor(const std::string& name) override {
    return make_marked_executor(*inner_, name);
  }
  // Not offered: a marked executor hides its inner one, which sharing needs.
  std::uint64_t random_seed() override { return inner_->random_seed(); }
  bool driven_by_caller() const override { return inner_->driven_by_caller(); }

 private:
  std::shared_ptr<Env> inner_;
};

}  // namespace

// Added to the depth by mark_threads_of: never taken away.
constexpr int kMarkedForGood = 1 << 20;

bool on_keel_thread() { return keel_task_depth > 0; }

void mark_threads_of(Executor& executor) {
  executor.post([] {
    if (keel_task_depth < kMarkedForGood) keel_task_depth += kMarkedForGood;
  });
}

std::shared_ptr<Executor> make_marked_executor(Env& env, const std::string& name) {
  return std::make_shared<MarkedExecutor>(env.make_executor(name));
}

std::shared_ptr<Env> make_marked_env(std::shared_ptr<Env> env) {
  return std::make_shared<MarkedEnv>(std::move(env));
}

}  // namespace keel::runtime
