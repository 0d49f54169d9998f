// tests/integration/kv/headless_chromium.cc — see headless_chromium.h.
#include "headless_chromium.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "kv_harness.h"

extern char** environ;

namespace keel::kv::testing {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// WebDriver's key for an element reference in JSON (W3C WebDriver, "Elements").
constexpr const char* kElementKey = "element-6066-11e4-a52e-4f735466cecf";

std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string from_env_or(const char* variable, const char* fallback) {
  const char* value = std::getenv(variable);
  return find_in_path(value != nullptr && *value != '\0' ? value : fallback);
}

std::string base64_decode(const std::string& text) {
  auto digit = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    const int d = digit(c);
    if (d < 0) {
      if (c == '\n' || c == '\r') continue;
      throw std::runtime_error("screenshot: not base64");
    }
    bits = (bits << 6) | static_cast<std::uint32_t>(d);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

// The guard (headless_chromium.h). It runs in a child of a process that
// may have other threads, so it makes only async-signal-safe calls: all it
// needs was prepared before the fork.
[[noreturn]] void run_guard(int read_end, int write_end, char* const* argv, char* const* envp,
                            const char* log_path) {
  close(write_end);
  // A group of its own: a signal to the test's group (Ctrl-C) leaves it to
  // clean up after the test.
  setpgid(0, 0);
  const pid_t driver = fork();
  if (driver == 0) {
    setpgid(0, 0);                     // chromedriver's group, which Chromium inherits
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // should the guard itself be killed
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execve(argv[0], argv, envp);
    _exit(127);
  }
  if (driver > 0) setpgid(driver, driver);  // before the read: no window outside its group
  char byte = 0;
  while (true) {  // until EOF: the test closed the pipe, or ended
    const ssize_t n = read(read_end, &byte, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  if (driver > 0) {
    kill(-driver, SIGKILL);
    waitpid(driver, nullptr, 0);
  }
  _exit(0);
}

}  // namespace

std::string chromium_binary() { return from_env_or("KEEL_CHROMIUM", "chromium"); }
std::string chromedriver_binary() { return from_env_or("KEEL_CHROMEDRIVER", "chromedriver"); }

HeadlessChromium::HeadlessChromium(const fs::path& work_dir, Options options)
    : work_dir_(work_dir), options_(options) {
  const std::string chromium = chromium_binary();
  if (chromium.empty()) throw std::runtime_error("chromium not found (KEEL_CHROMIUM, PATH)");
  start_driver();
  try {
    const auto deadline = Clock::now() + options_.start_timeout;
    while (true) {
      HttpReply r = http(address_, "GET", "/status", "", std::chrono::milliseconds(1000));
      const json status = r.answered ? json::parse(r.body, nullptr, false) : json();
      if (status.is_object() && status.contains("value") && status["value"].is_object() &&
          status["value"].value("ready", false)) {
        break;
      }
      if (Clock::now() >= deadline) {
        throw std::runtime_error("chromedriver did not become ready on " + address_ + "\n" +
                                 log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const json args = {"--headless",
                       "--no-sandbox",
                       "--disable-gpu",
                       "--no-first-run",
                       "--disable-background-networking",
                       "--disable-dev-shm-usage",  // containers with a small /dev/shm
                       "--user-data-dir=" + (work_dir_ / "profile").string(),
                       "--window-size=" + std::to_string(options_.window_width) + "," +
                           std::to_string(options_.window_height)};
    const json capabilities = {
        {"capabilities",
         {{"alwaysMatch", {{"goog:chromeOptions", {{"binary", chromium}, {"args", args}}}}}}}};
    const json session = command("POST", "/session", capabilities);
    session_ = session.value("sessionId", "");
    if (session_.empty()) throw std::runtime_error("no session id in " + session.dump());
  } catch (...) {
    stop_driver();
    throw;
  }
}

HeadlessChromium::~HeadlessChromium() {
  if (!session_.empty()) {
    // Chromium quits; whatever it leaves, the guard kills.
    http(address_, "DELETE", "/session/" + session_, "", std::chrono::milliseconds(10'000));
  }
  stop_driver();
}

void HeadlessChromium::start_driver() {
  const std::string driver = chromedriver_binary();
  if (driver.empty()) throw std::runtime_error("chromedriver not found (KEEL_CHROMEDRIVER, PATH)");
  // HOME and TMPDIR inside the work folder: Chromium's crash database and
  // chromedriver's temporary profiles go there, not into the user's.
  const fs::path home = work_dir_ / "home";
  const fs::path tmp = work_dir_ / "tmp";
  fs::create_directories(home);
  fs::create_directories(tmp);
  address_ = "127.0.0.1:" + std::to_string(free_port());
  const std::string port = address_.substr(address_.find(':') + 1);
  std::vector<std::string> argv = {driver, "--port=" + port};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "HOME=", 5) != 0 && std::strncmp(*e, "TMPDIR=", 7) != 0) env.push_back(*e);
  }
  env.push_back("HOME=" + home.string());
  env.push_back("TMPDIR=" + tmp.string());
  std::vector<char*> argv_c;
  for (std::string& a : argv) argv_c.push_back(a.data());
  argv_c.push_back(nullptr);
  std::vector<char*> env_c;
  for (std::string& e : env) env_c.push_back(e.data());
  env_c.push_back(nullptr);
  const std::string log = (work_dir_ / "chromedriver.log").string();

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2: " + std::string(strerror(errno)));
  const pid_t guard = fork();
  if (guard < 0) {
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error("fork: " + std::string(strerror(errno)));
  }
  if (guard == 0) run_guard(fds[0], fds[1], argv_c.data(), env_c.data(), log.c_str());
  close(fds[0]);
  guard_ = guard;
  guard_pipe_ = fds[1];
}

void HeadlessChromium::stop_driver() {
  if (guard_pipe_ >= 0) close(guard_pipe_);
  guard_pipe_ = -1;
  if (guard_ > 0) {
    while (waitpid(guard_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  guard_ = -1;
}

std::string HeadlessChromium::log_tail() const {
  std::string log = read_file(work_dir_ / "chromedriver.log");
  if (log.size() > 3000) log = "..." + log.substr(log.size() - 3000);
  return "chromedriver's log (" + (work_dir_ / "chromedriver.log").string() + "):\n" + log;
}

json HeadlessChromium::command(const std::string& method, const std::string& path,
                               const json& body) {
  const HttpReply r = http(address_, method, path, body.is_null() ? "" : body.dump(),
                           std::chrono::milliseconds(60'000));
  const std::string what = "WebDriver " + method + " " + path;
  if (!r.answered) {
    throw std::runtime_error(what + ": chromedriver did not answer (" + r.error + ")\n" +
                             log_tail());
  }
  const json reply = json::parse(r.body, nullptr, false);
  if (!reply.is_object() || !reply.contains("value")) {
    throw std::runtime_error(what + ": not a WebDriver answer: " + r.body.substr(0, 500));
  }
  if (r.status != 200) {
    const json& v = reply["value"];
    const std::string error = v.is_object() ? v.value("error", "?") : "?";
    const std::string message = v.is_object() ? v.value("message", "") : v.dump();
    throw std::runtime_error(what + ": " + error + ": " + message.substr(0, 1000));
  }
  return reply["value"];
}

void HeadlessChromium::navigate(const std::string& url) {
  command("POST", "/session/" + session_ + "/url", {{"url", url}});
}

json HeadlessChromium::execute(const std::string& script, const json& args) {
  return command("POST", "/session/" + session_ + "/execute/sync",
                 {{"script", script}, {"args", args}});
}

std::optional<std::string> HeadlessChromium::find(const std::string& css_selector) {
  const json found = command("POST", "/session/" + session_ + "/elements",
                             {{"using", "css selector"}, {"value", css_selector}});
  if (!found.is_array() || found.empty() || !found[0].contains(kElementKey)) return std::nullopt;
  return found[0][kElementKey].get<std::string>();
}

void HeadlessChromium::click(const std::string& element) {
  command("POST", "/session/" + session_ + "/element/" + element + "/click", json::object());
}

std::string HeadlessChromium::screenshot_png() {
  const json shot = command("GET", "/session/" + session_ + "/screenshot");
  if (!shot.is_string()) throw std::runtime_error("screenshot: not a string");
  return base64_decode(shot.get<std::string>());
}

}  // namespace keel::kv::testing
