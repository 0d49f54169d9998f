// sim/kv_workload.h — concurrent key-value clients for a SimCluster of
// KvFsm servers, recording a History for the linearizability checker.
//
// Each client is a state machine on its own executor: think, pick an
// operation (put, cas, delete, a get at Linearizable, Lease or Stale
// consistency, or now and then a restore of the whole state, recorded as a
// write of every key, an on-demand snapshot or a leadership transfer),
// send it to the server it believes leads, wait for the
// future's then() callback, record the outcome, go again. Never a blocking
// get(): the simulator has one thread.
//
// Where an operation goes: to the believed leader (a NotLeader hint moves
// the belief; any other failure moves it to the next server), except that
// some linearizable reads go to a random server (follower reads).
//
// What is recorded (sim/history.h), with virtual times:
//   call_time    just before the call into the Raft;
//   return_time  when the client handles the answer (a read's value is taken
//                from the server's FSM in the then() callback itself, on the
//                loop thread, while nothing else can run);
//   outcome      Ok; Failed when the call certainly had no effect (NotLeader,
//                Shutdown, ResourceExhausted, InvalidArgument, a transfer in
//                progress, any failed read); Unknown when a write may have
//                happened (OutcomeUnknown, Timeout, no answer by the client's
//                own deadline: the server crashed).
// Written values are unique ("c3v17"), so a read names its write. Stale
// reads are recorded unchecked; lease reads too when the run's clock drift
// may exceed the lease bound (KvWorkloadOptions::lease_reads_checked).
//
// Thread safety: none; runs on the simulator's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sim/history.h"
#include "sim/sim_cluster.h"

namespace keel::sim {

struct KvWorkloadOptions {
  std::size_t clients = 5;
  // Operations issued over all clients; the workload is finished once they
  // have all returned.
  std::uint64_t ops = 300;
  std::size_t keys = 3;
  // Relative weights of the operations.
  unsigned put_weight = 3;
  unsigned cas_weight = 2;
  unsigned delete_weight = 1;
  unsigned linearizable_get_weight = 3;
  unsigned lease_get_weight = 2;
  unsigned stale_get_weight = 1;
  // Share of operations that are a Raft::restore of a fresh state (every key
  // absent or given a new value of restore_value_padding more bytes).
  double restore_fraction = 0;
  std::size_t restore_value_padding = 400;
  // Share of operations that are a Raft::snapshot on a random server (not
  // recorded in the history: they change no key).
  double snapshot_fraction = 0;
  // Share of operations that are a Raft::transfer_leadership from the
  // believed leader (not in the history either).
  double transfer_fraction = 0;
  // Share of linearizable gets sent to a random server instead of the leader.
  double follower_read_fraction = 0.25;
  // The timeout passed to apply() and read(); the client gives up (Unknown)
  // at 1.5 times it plus 100 ms if no answer came (a crashed server).
  std::chrono::nanoseconds op_timeout = std::chrono::milliseconds(1000);
  // Pause between a client's operations: uniform in [low, high].
  std::chrono::nanoseconds think_low = std::chrono::milliseconds(0);
  std::chrono::nanoseconds think_high = std::chrono::milliseconds(60);
  // False when some clock may drift beyond Config::clock_drift_percent: lease
  // reads are then not promised to be linearizable, and are not checked.
  bool lease_reads_checked = true;
};

class KvWorkload {
 public:
  KvWorkload(SimCluster& cluster, const KvWorkloadOptions& options);
  ~KvWorkload();
  KvWorkload(const KvWorkload&) = delete;
  KvWorkload& operator=(const KvWorkload&) = delete;

  void start();
  // No new operations; those in flight still complete (or time out).
  void stop_issuing();
  // Every operation issued has returned, and no more will be issued.
  bool finished() const;
  // One put to the current ready leader (or any server if none), recorded
  // like any other; `done` gets whether it was acknowledged (Ok).
  void probe_write(std::function<void(bool ok)> done);

  std::uint64_t issued() const;
  const History& history() const;
  // "ok=120 failed=30 unknown=4": outcomes so far.
  std::string summary() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace keel::sim
