// runtime/keel_thread.h — knowing whether the current thread is running a
// keel task.
//
// shutdown() waits for the server to stop, but it may be called from an
// observer callback or a future's then() callback, i.e. from a thread the
// shutdown itself must stop: waiting there would deadlock. Every executor the
// runtime uses is wrapped so that its tasks run with a thread-local marker
// set; shutdown() does not wait when it sees the marker.
//
// Thread safety: the marker is per thread; the wrappers are as safe as the
// executors they wrap.
#pragma once

#include <memory>
#include <string>

#include "keel/env.h"

namespace keel::runtime {

// True while the calling thread runs a task of a marked executor, or on a
// thread marked as a keel thread for good.
bool on_keel_thread();
// Marks the executor's thread(s) as keel threads for as long as they run:
// posts, as its first task, one that marks the thread that runs it. For the
// runtime's own executors of a thread Env, whose threads run nothing but keel
// tasks: cheaper than wrapping every task (make_marked_executor).
void mark_threads_of(Executor& executor);

std::shared_ptr<Executor> make_marked_executor(Env& env, const std::string& name);
// An Env whose executors are marked (for components that create their own).
std::shared_ptr<Env> make_marked_env(std::shared_ptr<Env> env);

}  // namespace keel::runtime
