// keel/env.h — everything the runtime needs from the world besides storage
// and network: a clock, task executors and a random seed.
//
// keel's runtime is a set of components (the raft loop, the log writer, the
// applier, observers' deliverers) that talk only by posting tasks to
// executors the Env provides; none creates a thread or sleeps. The
// production Env (make_thread_env) uses the steady clock and gives each
// executor a thread of its own, except an executor made to share another's
// (make_executor_sharing): components that never block then hand work to
// each other without waking a thread. ManualEnv runs every executor on the one
// thread that calls its run methods, with virtual time and a seeded choice of
// which executor runs next: a whole cluster then replays bit for bit from a
// seed, which is what the simulator is built on.
//
// Thread safety: Env::now(), Executor::post() and post_after() may be called
// from any thread. ManualEnv's run/advance methods must be called from one
// thread, the only one that drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace keel {

using Duration = std::chrono::nanoseconds;
using Task = std::function<void()>;

// A serial executor: tasks run one at a time, in the order posted (timers in
// the order they fall due), never inline within post().
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void post(Task task) = 0;
  // Runs `task` once `delay` has passed on the Env's clock (a negative delay
  // counts as zero). Timers due at the same time run in the order posted.
  virtual void post_after(Duration delay, Task task) = 0;
  // Drops pending tasks and refuses new ones (later posts are silently
  // dropped); waits for a running task to finish unless called from within
  // this executor's own task. Idempotent. The destructor stops; it may run
  // inside the executor's own task (a task that held the last reference).
  //
  // Dropped tasks are destroyed, not run: a task that must always report back
  // (resolve a Promise, say) needs its owner to do so on shutdown. A task that
  // keeps a shared_ptr to its own executor (a self-rearming timer) keeps that
  // executor alive until stop() is called.
  virtual void stop() = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // Monotonic time since an arbitrary epoch.
  virtual Duration now() const = 0;
  // A new serial executor; `name` shows in thread names and traces.
  virtual std::shared_ptr<Executor> make_executor(const std::string& name) = 0;
  // A new serial executor whose tasks run on the thread of `host` (an
  // executor this Env made), interleaved with host's in posting order; each
  // keeps its own stop(). For work that never blocks and follows host's
  // closely (the runtime's log writer on a memory store, a cheap applier):
  // a hop between the two then costs no thread wake-up. An Env may decline
  // and return an executor of its own; the default does, and so does
  // ManualEnv, whose scheduler explores every interleaving anyway.
  virtual std::shared_ptr<Executor> make_executor_sharing(const std::string& name, Executor& host) {
    (void)host;
    return make_executor(name);
  }
  // A fresh seed for a component's PRNG.
  virtual std::uint64_t random_seed() = 0;
  // True when tasks run only while the caller drives the Env (ManualEnv, and
  // any Env that wraps one, such as the simulator's per-node views): nothing
  // may then wait for a task to run, or it waits forever. Raft::shutdown()
  // uses it to return at once instead of waiting for the server to stop.
  virtual bool driven_by_caller() const { return false; }
};

// Threads and the steady clock. A post wakes an executor's thread only when
// it sleeps; a thread that wakes runs everything ready before it sleeps again.
std::shared_ptr<Env> make_thread_env();

// Deterministic: virtual time (starting at 0), one thread, seeded scheduling.
// Each executor keeps its own FIFO order; which executor with a ready task runs
// next is chosen by a PRNG seeded with `seed`, so the same seed and the same
// calls replay the same interleaving. A task that throws aborts the process,
// as in the thread env.
//
// Executors it made stay valid after the ManualEnv is destroyed: destruction
// drops every pending task, and posting afterwards is a no-op.
class ManualEnv final : public Env {
 public:
  explicit ManualEnv(std::uint64_t seed);
  ~ManualEnv() override;
  ManualEnv(const ManualEnv&) = delete;
  ManualEnv& operator=(const ManualEnv&) = delete;

  Duration now() const override;
  std::shared_ptr<Executor> make_executor(const std::string& name) override;
  std::uint64_t random_seed() override;
  bool driven_by_caller() const override { return true; }

  // Runs one runnable task, chosen by the seeded PRNG among executors that
  // have one; false if nothing is runnable at the current time.
  bool run_one();
  // Runs tasks until none is runnable at the current time; at most max_tasks.
  std::size_t run_until_idle(std::size_t max_tasks = 1'000'000);
  // Moves virtual time forward by `delay`, running every task that falls due
  // on the way, in time order.
  void advance(Duration delay);
  // Runs tasks, jumping time to the next timer whenever nothing is runnable,
  // until `done()` holds or `limit` of virtual time has passed. Returns done().
  // `done()` is checked before each task. If no timer falls due within the
  // limit, time ends at now() + limit; if nothing at all is left to run, it
  // returns at once without moving time (done() could no longer change).
  //
  // advance() and run_until() abort if a million tasks run without time
  // moving: a task re-posting itself with post() would otherwise hang them.
  bool run_until(const std::function<bool()>& done, Duration limit);
  // Tasks run so far (for determinism checks and traces).
  std::uint64_t tasks_run() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace keel
