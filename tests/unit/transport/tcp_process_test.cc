// keel::Raft servers as separate processes (keel-tcp-test-server) over TCP
// on 127.0.0.1: clusters of 3 and 5 elect, replicates, loses its leader to
// SIGKILL, elects another, and the killed server, restarted on its port and
// data directory, catches up. Every process is killed and reaped when the
// test ends, also when it fails.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tcp_test_util.h"

namespace keel {
namespace {

using namespace std::chrono_literals;

// A child process with pipes on its stdin and stdout.
class Process {
 public:
  explicit Process(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~Process() {
    kill();
    if (stdin_ >= 0) ::close(stdin_);
    if (stdout_ >= 0) ::close(stdout_);
  }
  bool running() const { return pid_ > 0; }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool write_line(const std::string& line) {
    const std::string bytes = line + "\n";
    return ::write(stdin_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  // The next line, or "" once the bound passes or the process closed stdout.
  std::string read_line(std::chrono::milliseconds bound = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    for (;;) {
      const auto newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return {};
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  std::string ask(const std::string& line) {
    return write_line(line) ? read_line() : std::string();
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
};

class ProcessCluster {
 public:
  explicit ProcessCluster(std::size_t size) {
    for (std::size_t id = 1; id <= size; ++id) spawn(id, "127.0.0.1:0");
    for (auto& [id, p] : processes_) {
      const std::string line = p->read_line();
      EXPECT_EQ(line.rfind("listening ", 0), 0u) << "server " << id << " said '" << line << "'";
      addresses_[id] = line.substr(10);
    }
    for (auto& [id, address] : addresses_) {
      members_ += (members_.empty() ? "" : ",") + std::to_string(id) + "=" + address;
    }
    for (auto& [id, p] : processes_) p->write_line("members " + members_);
  }

  void spawn(std::size_t id, const std::string& listen) {
    const std::string dir = (dir_.path() / ("server-" + std::to_string(id))).string();
    processes_[id] = std::make_unique<Process>(
        std::vector<std::string>{KEEL_TCP_TEST_SERVER, "--id", std::to_string(id), "--listen",
                                 listen, "--data-dir", dir, "--cluster-id", "77"});
  }
  void kill(std::size_t id) { processes_.at(id)->kill(); }
  // Starts a killed server again on its port and data directory.
  bool restart(std::size_t id) {
    spawn(id, addresses_.at(id));
    const std::string line = processes_.at(id)->read_line();
    if (line != "listening " + addresses_.at(id)) {
      ADD_FAILURE() << "restarted server said '" << line << "'";
      return false;
    }
    return processes_.at(id)->write_line("members " + members_);
  }
  Process& process(std::size_t id) { return *processes_.at(id); }

  // The one live server that says it leads, once exactly one does.
  std::size_t wait_for_leader(const std::set<std::size_t>& dead = {}) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::size_t leader = 0;
      int leaders = 0;
      for (auto& [id, p] : processes_) {
        if (dead.count(id)) continue;
        if (p->ask("state").rfind("state leader ", 0) == 0) {
          leader = id;
          ++leaders;
        }
      }
      if (leaders == 1) return leader;
      std::this_thread::sleep_for(20ms);  // polling other processes: nothing to wait on here
    }
    return 0;
  }
  bool has_value(std::size_t id, const std::string& key, const std::string& value) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (process(id).ask("get " + key) == "value " + value) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  testing::TempDir dir_;
  std::map<std::size_t, std::unique_ptr<Process>> processes_;
  std::map<std::size_t, std::string> addresses_;
  std::string members_;
};

class TcpProcesses : public ::testing::TestWithParam<std::size_t> {};

TEST_P(TcpProcesses, SurviveSigkillOfTheLeaderAndARestartCatchesUp) {
  const std::size_t size = GetParam();
  ProcessCluster cluster(size);
  const std::size_t first = cluster.wait_for_leader();
  ASSERT_NE(first, 0u);
  for (int i = 0; i < 150; ++i) {
    ASSERT_EQ(cluster.process(first)
                  .ask("apply k" + std::to_string(i) + " v" + std::to_string(i))
                  .rfind("ok ", 0),
              0u);
  }
  for (std::size_t id = 1; id <= size; ++id)
    EXPECT_TRUE(cluster.has_value(id, "k149", "v149")) << id;

  cluster.kill(first);
  const std::size_t second = cluster.wait_for_leader({first});
  ASSERT_NE(second, 0u);
  ASSERT_NE(second, first);
  for (int i = 150; i < 300; ++i) {
    ASSERT_EQ(cluster.process(second)
                  .ask("apply k" + std::to_string(i) + " v" + std::to_string(i))
                  .rfind("ok ", 0),
              0u);
  }

  // Back on its port and its data: it recovers what it had and catches up
  // with what it missed (past a snapshot the others took meanwhile).
  ASSERT_TRUE(cluster.restart(first));
  EXPECT_TRUE(cluster.has_value(first, "k299", "v299"));
  EXPECT_TRUE(cluster.has_value(first, "k10", "v10"));
}

INSTANTIATE_TEST_SUITE_P(Servers, TcpProcesses, ::testing::Values(3, 5),
                         [](const auto& test_param) {
                           return std::to_string(test_param.param) + "Processes";
                         });

}  // namespace
}  // namespace keel
