#include "transport/receiver_gate.h"

#include <utility>

namespace keel::transport {

Status ReceiverGate::open(Transport::Receiver receiver) {
  if (!receiver) return Status::invalid_argument("transport: start() needs a receiver");
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_) return Status::invalid_argument("transport: already started");
  receiver_ = std::make_shared<const Transport::Receiver>(std::move(receiver));
  open_ = true;
  ++epoch_;
  return Status::ok();
}

void ReceiverGate::close() {
  SharedReceiver released;  // destroyed after the lock is dropped
  bool inside_receiver = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
    released = std::move(receiver_);
    inside_receiver = calling_thread_ == std::this_thread::get_id();
  }
  // A call that began before open_ was cleared may still be running; wait for
  // it. Calls that begin later see open_ == false and do nothing.
  if (!inside_receiver) {
    std::lock_guard<std::mutex> wait_for_call(call_mutex_);
  }
}

std::optional<std::uint64_t> ReceiverGate::epoch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return std::nullopt;
  return epoch_;
}

ReceiverGate::SharedReceiver ReceiverGate::begin_call(std::uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_ || epoch_ != epoch) return nullptr;
  calling_thread_ = std::this_thread::get_id();
  return receiver_;
}

bool ReceiverGate::deliver(std::uint64_t epoch, std::string frame) {
  std::lock_guard<std::mutex> call(call_mutex_);
  const SharedReceiver receiver = begin_call(epoch);
  if (!receiver) return false;
  (*receiver)(std::move(frame));
  std::lock_guard<std::mutex> lock(mutex_);
  calling_thread_ = std::thread::id();
  return true;
}

}  // namespace keel::transport
