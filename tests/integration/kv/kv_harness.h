// tests/integration/kv/kv_harness.h — real keel-kv processes for tests:
// start them, signal them, wait for them, talk HTTP to them.
//
// Every process is started with PR_SET_PDEATHSIG(SIGKILL), by one thread
// that lives as long as the test process, so that a test that dies (an
// assertion, a crash, a timeout's SIGKILL) takes its servers with it, and
// only then; a Process that goes out of scope kills and reaps its child.
//
// Thread safety: a Process or KvCluster is used by one thread; http() may
// be called from any number of threads at once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace keel::kv::testing {

using std::chrono::milliseconds;

// The keel-kv binary under test (set by CMake).
std::string keel_kv_binary();

struct Exit {
  bool signalled = false;
  int code = 0;  // exit status, or the signal
};

class Process {
 public:
  Process() = default;
  // Starts argv[0] with stdout and stderr appended to `log_path`.
  static Process spawn(const std::vector<std::string>& argv, const std::string& log_path);
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits up to `timeout` for the process to end; nullopt if it has not.
  std::optional<Exit> wait_for(milliseconds timeout);
  // SIGKILL and reap (nothing if it already ended).
  void kill_and_reap();
  // How it ended, once it has (running() reaps it).
  std::optional<Exit> exit_status() const { return exit_; }

 private:
  pid_t pid_ = -1;
  std::optional<Exit> exit_;
};

// Runs a command to its end (at most `timeout`, then SIGKILL); its output
// (stdout and stderr) goes to `output`.
Exit run_command(const std::vector<std::string>& argv, std::string* output,
                 milliseconds timeout = milliseconds(60'000));

struct HttpReply {
  bool connected = false;  // false: could not connect (nothing was sent)
  bool answered = false;   // false: no answer (connect failed, or the read)
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  std::string error;  // the transport error when not answered
  std::string header(const std::string& name) const;
};

// One HTTP request to "host:port"; never follows redirects.
HttpReply http(const std::string& address, const std::string& method, const std::string& target,
               const std::string& body = "", milliseconds timeout = milliseconds(5000));

// A free TCP port on `ip` (bound and released; good enough for tests).
std::uint16_t free_port(const std::string& ip = "127.0.0.1");

std::string read_file(const std::filesystem::path& path);

// A fresh directory under the system's temporary folder, removed by the
// destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct KvClusterOptions {
  std::size_t servers = 3;
  // Server i (1-based) listens on ip_for(i); by default all on 127.0.0.1
  // with free ports. With distinct_ips, server i is 127.0.0.(10 + i) and
  // uses fixed ports (raft 7000, http 8000): for network namespaces.
  bool distinct_ips = false;
  std::uint64_t cluster_id = 42;
  std::uint64_t heartbeat_ms = 50;
  std::uint64_t election_timeout_ms = 500;
  std::vector<std::string> extra_args;  // given to every server
};

class KvCluster {
 public:
  KvCluster(const std::filesystem::path& dir, KvClusterOptions options);
  ~KvCluster();

  std::size_t size() const { return options_.servers; }
  std::string raft_address(std::size_t i) const;
  std::string http_address(std::size_t i) const;
  std::string ip(std::size_t i) const;
  std::filesystem::path data_dir(std::size_t i) const;
  std::filesystem::path log_path(std::size_t i) const;
  // The flags server i is started with (for tests that change them).
  std::vector<std::string> args(std::size_t i) const;

  void start_all();
  void start(std::size_t i);
  bool running(std::size_t i);
  void signal(std::size_t i, int sig);
  // kill -9, reaped.
  void kill(std::size_t i);
  // SIGTERM; the exit, or nullopt if it did not end within `timeout`.
  std::optional<Exit> stop(std::size_t i, milliseconds timeout = milliseconds(15'000));
  void stop_all();
  pid_t pid(std::size_t i) const;

  // The server that says it is the ready leader, if one does now.
  std::optional<std::size_t> ready_leader();
  // Waits for one; nullopt after `timeout`.
  std::optional<std::size_t> wait_for_ready_leader(milliseconds timeout);
  // Servers that ended other than by this cluster's kill() or stop(): a
  // crash, a failed start, a fail-stop. One line each ("server 2 exited
  // with status 2"), noted when the server is started again or by
  // check_exits().
  void check_exits();
  const std::vector<std::string>& unexpected_exits() const { return unexpected_exits_; }
  // "a:1,b:2,c:3": every server's HTTP address.
  std::string endpoints() const;

 private:
  std::filesystem::path dir_;
  KvClusterOptions options_;
  std::vector<std::uint16_t> raft_ports_;
  std::vector<std::uint16_t> http_ports_;
  std::vector<Process> processes_;
  std::vector<bool> expected_end_;  // kill() or stop() was asked for
  std::vector<std::string> unexpected_exits_;
};

}  // namespace keel::kv::testing
