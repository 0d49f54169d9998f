#include "runtime/snapshotter.h"

#include <string>
#include <utility>

namespace keel::runtime {

namespace {

// What FsmSnapshot::persist writes through: the store's sink, which the
// FSM must not commit or cancel itself.
class SinkWriter final : public SnapshotWriter {
 public:
  SinkWriter(SnapshotSink& sink, const std::atomic<bool>& cancelled)
      : sink_(sink), cancelled_(cancelled) {}

  Status write(std::string_view bytes) override {
    if (failure_.is_ok() && cancelled_.load()) {
      failure_ = Status::shutdown();
    }
    if (!failure_.is_ok()) return failure_;
    Status status = sink_.write(bytes);
    if (!status.is_ok()) failure_ = status;
    return status;
  }

  const Status& failure() const { return failure_; }

 private:
  SnapshotSink& sink_;
  const std::atomic<bool>& cancelled_;
  Status failure_;
};

}  // namespace

Snapshotter::Snapshotter(std::shared_ptr<SnapshotStore> store, std::shared_ptr<Executor> executor,
                         OnDone on_done)
    : store_(std::move(store)), executor_(std::move(executor)), on_done_(std::move(on_done)) {}

void Snapshotter::persist(std::shared_ptr<FsmSnapshot> snapshot, SnapshotMeta meta) {
  executor_->post(
      [self = shared_from_this(), snapshot = std::move(snapshot), meta = std::move(meta)] {
        Result<SnapshotMeta> result = self->write(*snapshot, meta);
        snapshot->release();
        self->on_done_(std::move(result));
      });
}

Result<SnapshotMeta> Snapshotter::write(FsmSnapshot& snapshot, const SnapshotMeta& meta) {
  Result<std::unique_ptr<SnapshotSink>> sink = store_->create(meta);
  if (!sink.is_ok()) return sink.status();
  SinkWriter writer(**sink, *cancelled_);
  Status persisted = snapshot.persist(writer);
  // An FSM that swallowed a write error must not get a snapshot committed
  // with a hole in it.
  if (persisted.is_ok()) persisted = writer.failure();
  if (!persisted.is_ok()) {
    (*sink)->cancel();
    return Status::with_code(persisted.code(),
                             "the FSM's snapshot was not persisted: " + persisted.message());
  }
  return (*sink)->commit();
}

}  // namespace keel::runtime
