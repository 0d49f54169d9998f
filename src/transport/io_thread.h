// transport/io_thread.h — one thread that runs an Asio io_context, and serial
// executors whose tasks run on that thread among the sockets' handlers.
//
// A transport's sockets live on its io_context. A component that never
// blocks (the runtime's raft loop) can run on the same thread, as the tasks
// of an executor made here: a frame read from a socket then reaches it
// without waking another thread, and a frame it sends is written by the
// thread that owns the socket. The executors keep keel::Executor's contract
// (keel/env.h): each runs its tasks one at a time in posting order, timers
// in (due time, posting order), never inline within post(); each has its own
// stop(). Tasks of all of them and the sockets' handlers share the thread in
// the order they were queued, whichever thread queued them.
//
// Executors made here stay valid after the IoThread is gone: their posts are
// then dropped, and stop() returns at once.
//
// Thread safety: every method may be called from any thread, except that
// stop() and the destructor must not be called on the I/O thread itself
// (they join it).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "keel/env.h"

namespace asio {
class io_context;
}  // namespace asio

namespace keel::transport {

struct IoThreadState;  // io_thread.cc

class IoThread {
 public:
  // The context exists from here on (sockets may be made on it); the thread
  // starts with start(). `name` names the thread (the first 15 characters).
  explicit IoThread(std::string name);
  // stop()s.
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context& context();
  // Runs the context on a new thread until stop(), idle or not.
  void start();
  // Stops the context and joins the thread; the executors' tasks not yet
  // run are dropped (destroyed with the context), later posts are dropped.
  // Handlers of the context are not run again. Idempotent.
  void stop();
  // True on the I/O thread.
  bool on_thread() const;
  // A new serial executor on the I/O thread. Its tasks must not block: they
  // hold up every socket of the context.
  std::shared_ptr<Executor> make_executor(const std::string& name);

 private:
  std::shared_ptr<IoThreadState> state_;  // shared with the executors
  std::unique_ptr<asio::io_context> io_;
  std::string name_;
  std::thread thread_;
};

}  // namespace keel::transport
