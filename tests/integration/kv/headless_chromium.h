// tests/integration/kv/headless_chromium.h — a headless Chromium for tests,
// driven through chromedriver's W3C WebDriver HTTP API: load a page, run a
// script in it, click an element, take a screenshot.
//
// chromedriver runs on a free loopback port in a process group of its own,
// which the Chromium processes it starts inherit. A guard process (forked
// before it, waiting on a pipe from the test) kills that whole group when
// the pipe closes: when the HeadlessChromium is destroyed, and also when
// the test process dies however it dies (an assertion, a crash, SIGKILL),
// since the kernel closes the pipe then. Nothing is left running.
// Chromium's profile, temporary files and crash database live under the
// folder given to the constructor.
//
// Thread safety: one thread uses a HeadlessChromium.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace keel::kv::testing {

// The executables it needs: $KEEL_CHROMIUM or `chromium`, and
// $KEEL_CHROMEDRIVER or `chromedriver`, looked up in PATH. Empty if not found.
std::string chromium_binary();
std::string chromedriver_binary();

class HeadlessChromium {
 public:
  struct Options {
    int window_width = 1200;
    int window_height = 600;
    // How long chromedriver may take to answer and a session to open.
    std::chrono::milliseconds start_timeout{60'000};
  };

  // Starts chromedriver and opens a session (Chromium with --headless
  // --no-sandbox --disable-gpu --no-first-run --disable-background-networking).
  // Throws std::runtime_error, with chromedriver's log, if it cannot.
  HeadlessChromium(const std::filesystem::path& work_dir, Options options);
  explicit HeadlessChromium(const std::filesystem::path& work_dir)
      : HeadlessChromium(work_dir, Options{}) {}
  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;
  // Ends the session (Chromium quits), then kills whatever is left.
  ~HeadlessChromium();

  void navigate(const std::string& url);
  // Runs `script` as a function body (WebDriver "execute script") and
  // returns what it returns.
  nlohmann::json execute(const std::string& script,
                         const nlohmann::json& args = nlohmann::json::array());
  // The first element matching a CSS selector: its WebDriver reference, or
  // nullopt if there is none.
  std::optional<std::string> find(const std::string& css_selector);
  void click(const std::string& element);
  // The viewport as PNG bytes.
  std::string screenshot_png();

 private:
  // One WebDriver command: its "value", or a std::runtime_error naming the
  // command and WebDriver's error.
  nlohmann::json command(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr);
  void start_driver();
  void stop_driver();
  std::string log_tail() const;

  std::filesystem::path work_dir_;
  Options options_;
  std::string address_;  // chromedriver's, "127.0.0.1:port"
  std::string session_;
  pid_t guard_ = -1;
  int guard_pipe_ = -1;  // its write end; closing it ends chromedriver's group
};

}  // namespace keel::kv::testing
