// transport/receiver_gate.h — the receiving end's on/off switch, shared by
// transports: frames reach the receiver only while the gate is open, and
// once close() returns the receiver is never called again.
//
// That promise is what lets the runtime tear down the state its receiver
// points into right after Transport::stop(). With threads, a delivery may be
// running on another thread when close() is called, so close() waits for it
// to finish; it does not wait when called from inside the receiver (on the
// delivering thread), which would deadlock.
//
// Each open() starts a new epoch. A frame accepted while open remembers the
// epoch, and is not delivered in a later one: a server that stops and
// starts again (a restart in a test) does not hear frames sent to its
// previous incarnation.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "keel/status.h"
#include "keel/transport.h"

namespace keel::transport {

class ReceiverGate {
 public:
  // InvalidArgument if already open.
  Status open(Transport::Receiver receiver);
  // Idempotent. Drops the receiver (and what it captured).
  void close();
  // The current epoch while open; nullopt while closed.
  std::optional<std::uint64_t> epoch() const;
  // Calls the receiver with `frame` if the gate is open in `epoch`; returns
  // whether it did.
  bool deliver(std::uint64_t epoch, std::string frame);

 private:
  using SharedReceiver = std::shared_ptr<const Transport::Receiver>;
  // The receiver to call for a frame of `epoch`, or null; marks the calling
  // thread as inside the receiver.
  SharedReceiver begin_call(std::uint64_t epoch);

  // Held for the whole of each receiver call, so close() can wait one out.
  // Always taken before mutex_, never while holding it.
  std::mutex call_mutex_;
  mutable std::mutex mutex_;  // guards the fields below
  SharedReceiver receiver_;   // copied per call, so close() may drop it mid-call
  bool open_ = false;
  std::uint64_t epoch_ = 0;
  std::thread::id calling_thread_;  // the thread inside the receiver, if any
};

}  // namespace keel::transport
