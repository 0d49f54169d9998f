// Helpers for the TCP transport's tests: a raw socket client that can send
// anything (the hostile peer), certificates made at test time with the
// `openssl` command, and a temporary directory.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace keel::testing {

// A directory removed with the object.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("keel-tcp-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A listening socket on 127.0.0.1 with a port the kernel picked; sets
// `address` to "127.0.0.1:PORT". The caller closes the descriptor.
inline int listen_on_loopback(int backlog, std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(fd, backlog);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  return fd;
}

// A blocking TCP client on loopback that writes raw bytes.
class RawClient {
 public:
  // `address` is "127.0.0.1:PORT".
  explicit RawClient(const std::string& address) {
    const auto colon = address.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  // Reads until `count` bytes arrived, the peer closed, or the bound passed.
  std::string receive(std::size_t count,
                      std::chrono::milliseconds bound = std::chrono::seconds(10)) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, std::min(sizeof buffer, count - out.size()), 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }
  // Whether the peer closed the connection within the bound (a read returns
  // end-of-file or an error).
  bool closed_by_peer(std::chrono::milliseconds bound = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
};

// A CA and certificates it signs, made by the `openssl` command in `dir`:
// <name>.crt / <name>.key for each name given to issue().
class TestPki {
 public:
  // `ca` names the CA's files (ca.crt, ca.key), so that two PKIs in one
  // directory are two unrelated CAs.
  TestPki(std::filesystem::path dir, std::string ca) : dir_(std::move(dir)), ca_(std::move(ca)) {
    ok_ = run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca_ + " -keyout " +
              file(ca_ + ".key") + " -out " + file(ca_ + ".crt"));
  }
  bool ok() const { return ok_; }
  std::string ca_file() const { return file(ca_ + ".crt"); }
  // A certificate for `name` naming 127.0.0.1 and the DNS name `dns`.
  bool issue(const std::string& name, const std::string& dns) {
    std::ofstream(file(name + ".ext")) << "subjectAltName=IP:127.0.0.1,DNS:" << dns << "\n";
    return run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + dns + " -keyout " +
               file(name + ".key") + " -out " + file(name + ".csr")) &&
           run("openssl x509 -req -days 2 -in " + file(name + ".csr") + " -CA " + ca_file() +
               " -CAkey " + file(ca_ + ".key") + " -CAcreateserial -extfile " +
               file(name + ".ext") + " -out " + file(name + ".crt"));
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

 private:
  static bool run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
  }
  std::filesystem::path dir_;
  std::string ca_;
  bool ok_ = false;
};

}  // namespace keel::testing
