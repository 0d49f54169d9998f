// `keel-kv serve`'s options are checked before anything starts: every bad
// field, alone or in combination, is InvalidArgument with a message that
// names the flag to fix.
#include "kv/serve_options.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace keel::kv {
namespace {

using testing::HasSubstr;
using testing::StartsWith;

// Three servers bootstrapping a cluster, this one server 1.
ServeOptions valid_options() {
  ServeOptions o;
  o.id = 1;
  o.cluster_id = 42;
  o.in_memory = true;
  o.raft_addr = "127.0.0.1:7001";
  o.http_addr = "127.0.0.1:8001";
  o.members = "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003";
  o.http_members = "1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003";
  return o;
}

// InvalidArgument whose message starts with the flag, e.g. "--id: ...".
void expect_rejected(const ServeOptions& options, const std::string& flag, const std::string& why) {
  Status status = validate(options);
  ASSERT_FALSE(status.is_ok()) << why << ": accepted";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << why << ": " << status;
  EXPECT_THAT(status.message(), StartsWith("--" + flag + ":")) << why;
  EXPECT_EQ(status.message().find('\n'), std::string::npos) << why << ": not one line";
}

void expect_accepted(const ServeOptions& options, const std::string& why) {
  Status status = validate(options);
  EXPECT_TRUE(status.is_ok()) << why << ": " << status;
}

ServeOptions with(const std::function<void(ServeOptions&)>& change) {
  ServeOptions o = valid_options();
  change(o);
  return o;
}

TEST(KvServeOptionsTest, a_complete_bootstrap_configuration_is_valid) {
  expect_accepted(valid_options(), "bootstrap, in memory");
}

TEST(KvServeOptionsTest, the_defaults_with_identity_storage_and_addresses_are_valid) {
  ServeOptions o;
  o.id = 1;
  o.cluster_id = 1;
  o.data_dir = "/var/lib/keel-kv";
  o.raft_addr = "node1:7001";
  o.http_addr = "node1:8001";
  expect_accepted(o, "defaults, data dir, no members");
}

TEST(KvServeOptionsTest, other_valid_combinations_pass) {
  expect_accepted(with([](ServeOptions& o) {
                    o.members.clear();
                    o.http_members.clear();
                    o.join = "10.0.0.1:8001,10.0.0.2:8001";
                  }),
                  "join");
  expect_accepted(with([](ServeOptions& o) {
                    o.in_memory = false;
                    o.data_dir = "/data";
                  }),
                  "data dir");
  expect_accepted(with([](ServeOptions& o) {
                    o.tls_cert = "c.pem";
                    o.tls_key = "k.pem";
                    o.tls_ca = "ca.pem";
                    o.tls_verify_names = true;
                  }),
                  "TLS");
  for (const char* level : {"debug", "info", "warn", "error"}) {
    expect_accepted(with([&](ServeOptions& o) { o.log_level = level; }), level);
  }
  expect_accepted(with([](ServeOptions& o) { o.members = "1=127.0.0.1:7001"; }), "one member");
  expect_accepted(with([](ServeOptions& o) {
                    o.raft_addr = "127.0.0.1:7001";
                    o.http_addr = "127.0.0.1:7002";  // same host, other port
                    o.members = "1=127.0.0.1:7001";
                  }),
                  "same host");
}

TEST(KvServeOptionsTest, id_and_cluster_id_are_required_and_above_zero) {
  expect_rejected(with([](ServeOptions& o) { o.id = 0; }), "id", "id 0");
  expect_rejected(with([](ServeOptions& o) { o.cluster_id = 0; }), "cluster-id", "cluster id 0");
}

TEST(KvServeOptionsTest, exactly_one_of_data_dir_and_in_memory) {
  expect_rejected(with([](ServeOptions& o) {
                    o.in_memory = false;
                    o.data_dir.clear();
                  }),
                  "data-dir", "neither");
  expect_rejected(with([](ServeOptions& o) { o.data_dir = "/data"; }), "data-dir", "both");
}

TEST(KvServeOptionsTest, raft_and_http_addresses_must_be_host_and_port) {
  for (const char* flag : {"raft-addr", "http-addr"}) {
    const bool raft = std::string(flag) == "raft-addr";
    for (const char* bad :
         {"", "127.0.0.1", "127.0.0.1:", ":7005", "127.0.0.1:70000", "127.0.0.1:65536",
          "127.0.0.1:-1", "127.0.0.1:http", "127.0.0.1:80x", "127.0.0.1: 80"}) {
      expect_rejected(with([&](ServeOptions& o) {
                        (raft ? o.raft_addr : o.http_addr) = bad;
                        o.members.clear();  // so that only the address is wrong
                      }),
                      flag, std::string(flag) + " '" + bad + "'");
    }
  }
}

TEST(KvServeOptionsTest, raft_and_http_must_not_share_an_address) {
  expect_rejected(with([](ServeOptions& o) { o.http_addr = o.raft_addr; }), "http-addr",
                  "same address");
}

TEST(KvServeOptionsTest, the_outgoing_address_is_an_ip_when_given) {
  for (const char* bad : {"localhost", "127.0.0.1:7000", "10.0.0", "::g"}) {
    expect_rejected(with([&](ServeOptions& o) { o.outgoing_addr = bad; }), "outgoing-addr",
                    std::string("outgoing '") + bad + "'");
  }
  for (const char* good : {"127.0.0.11", "::1"}) {
    EXPECT_TRUE(validate(with([&](ServeOptions& o) { o.outgoing_addr = good; })).is_ok()) << good;
  }
}

TEST(KvServeOptionsTest, members_and_join_exclude_each_other) {
  expect_rejected(with([](ServeOptions& o) { o.join = "10.0.0.9:8001"; }), "join", "both");
}

TEST(KvServeOptionsTest, members_must_list_this_server_at_its_raft_address) {
  expect_rejected(with([](ServeOptions& o) { o.members = "2=127.0.0.1:7002,3=127.0.0.1:7003"; }),
                  "members", "own id missing");
  expect_rejected(with([](ServeOptions& o) { o.members = "1=127.0.0.1:7009,2=127.0.0.1:7002"; }),
                  "members", "own id at another port");
  expect_rejected(with([](ServeOptions& o) { o.members = "1=10.0.0.1:7001"; }), "members",
                  "own id at another host");
  Status status = validate(with([](ServeOptions& o) { o.members = "1=127.0.0.1:7009"; }));
  EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:7009"));
  EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:7001"));
}

TEST(KvServeOptionsTest, malformed_members_are_rejected) {
  for (const char* bad : {
           "1127.0.0.1:7001",                            // no '='
           "0=127.0.0.1:7001,1=127.0.0.1:7001",          // id 0
           "1=127.0.0.1:7001,1=127.0.0.1:7001",          // id twice
           "1=127.0.0.1:7001,1=127.0.0.1:7002",          // id twice, other address
           "x=127.0.0.1:7002,1=127.0.0.1:7001",          // id not a number
           "1x=127.0.0.1:7001",                          // id with trailing junk
           "=127.0.0.1:7001",                            // no id
           "-1=127.0.0.1:7001",                          // negative id
           "18446744073709551617=h:1,1=127.0.0.1:7001",  // id beyond 64 bits
           "1=127.0.0.1:7001,2=127.0.0.1",               // no port
           "1=127.0.0.1:7001,2=:7002",                   // no host
           "1=127.0.0.1:7001,2=127.0.0.1:70000",         // port beyond 65535
           "1=127.0.0.1:7001,,2=127.0.0.1:7002",         // empty item
           ",1=127.0.0.1:7001",                          // empty first item
       }) {
    expect_rejected(with([&](ServeOptions& o) { o.members = bad; }), "members", bad);
  }
}

TEST(KvServeOptionsTest, malformed_http_members_are_rejected) {
  for (const char* bad : {"1127.0.0.1:8001", "0=127.0.0.1:8001", "1=a:8001,1=b:8001", "1=127.0.0.1",
                          "1=127.0.0.1:99999", ",1=a:1"}) {
    expect_rejected(with([&](ServeOptions& o) { o.http_members = bad; }), "http-members", bad);
  }
}

TEST(KvServeOptionsTest, join_must_list_host_and_port_addresses) {
  for (const char* bad : {"10.0.0.1", "10.0.0.1:8001,10.0.0.2", ":8001", "10.0.0.1:70000",
                          ",10.0.0.1:8001", "10.0.0.1:8001,,10.0.0.2:8001"}) {
    expect_rejected(with([&](ServeOptions& o) {
                      o.members.clear();
                      o.http_members.clear();
                      o.join = bad;
                    }),
                    "join", bad);
  }
}

TEST(KvServeOptionsTest, tls_needs_all_three_files) {
  for (int mask = 1; mask < 7; ++mask) {  // every non-empty, incomplete subset
    ServeOptions o = valid_options();
    if (mask & 1) o.tls_cert = "c.pem";
    if (mask & 2) o.tls_key = "k.pem";
    if (mask & 4) o.tls_ca = "ca.pem";
    expect_rejected(o, "tls-cert", "TLS subset " + std::to_string(mask));
    EXPECT_THAT(validate(o).message(), HasSubstr("--tls-key"));
    EXPECT_THAT(validate(o).message(), HasSubstr("--tls-ca"));
  }
}

TEST(KvServeOptionsTest, log_level_must_be_a_known_level) {
  for (const char* bad : {"", "INFO", "trace", "warning", "info "}) {
    expect_rejected(with([&](ServeOptions& o) { o.log_level = bad; }), "log-level", bad);
  }
}

// A bound: [low, high] accepted at both ends, one past either end refused.
struct Bound {
  const char* flag;
  std::uint64_t ServeOptions::*field;
  std::uint64_t low;
  std::uint64_t high;
};

// The others set so that each bound can be reached alone: values may be 0
// (so any body size passes), bodies may be as large as allowed, no waiters
// (so any thread count passes) and the most threads.
ServeOptions options_for_bounds() {
  ServeOptions o = valid_options();
  o.max_value_bytes = 0;
  o.max_body_bytes = 128ULL << 20;
  o.max_waiters = 0;
  o.http_threads = 10'000;
  return o;
}

TEST(KvServeOptionsTest, each_numeric_limit_is_checked_against_its_range) {
  const std::vector<Bound> bounds = {
      {"max-key-bytes", &ServeOptions::max_key_bytes, 1, 1 << 20},
      {"max-value-bytes", &ServeOptions::max_value_bytes, 0, 64ULL << 20},
      {"max-body-bytes", &ServeOptions::max_body_bytes, 1024, 128ULL << 20},
      {"max-list-limit", &ServeOptions::max_list_limit, 1, 1'000'000},
      {"max-wait-ms", &ServeOptions::max_wait_ms, 1, 3'600'000},
      {"http-threads", &ServeOptions::http_threads, 2, 10'000},
      {"request-timeout-ms", &ServeOptions::request_timeout_ms, 1, 3'600'000},
      {"join-timeout-ms", &ServeOptions::join_timeout_ms, 1, 3'600'000},
      {"shutdown-drain-ms", &ServeOptions::shutdown_drain_ms, 0, 60'000},
      {"max-snapshot-bytes", &ServeOptions::max_snapshot_bytes, 1, 1ULL << 40},
  };
  for (const Bound& bound : bounds) {
    const std::string flag = bound.flag;
    ServeOptions o = options_for_bounds();
    o.*bound.field = bound.low;
    expect_accepted(o, flag + " at its low end");
    o.*bound.field = bound.high;
    expect_accepted(o, flag + " at its high end");
    if (bound.low > 0) {
      o.*bound.field = bound.low - 1;
      expect_rejected(o, flag, flag + " below its low end");
    }
    o.*bound.field = bound.high + 1;
    expect_rejected(o, flag, flag + " above its high end");
    o.*bound.field = std::numeric_limits<std::uint64_t>::max();
    expect_rejected(o, flag, flag + " at 2^64-1");
  }
}

TEST(KvServeOptionsTest, max_waiters_is_checked_against_its_range) {
  ServeOptions o = options_for_bounds();
  o.max_waiters = 10'000;
  expect_rejected(o, "max-waiters", "above 9999");
  o.max_waiters = std::numeric_limits<std::uint64_t>::max();
  expect_rejected(o, "max-waiters", "2^64-1");
  o.max_waiters = 9'999;  // the most that --http-threads' own bound leaves room for
  expect_accepted(o, "9999 waiters on 10000 threads");
}

TEST(KvServeOptionsTest, max_body_bytes_must_hold_the_largest_value) {
  expect_rejected(with([](ServeOptions& o) {
                    o.max_value_bytes = 4096;
                    o.max_body_bytes = 4095;
                  }),
                  "max-body-bytes", "body below value");
  expect_accepted(with([](ServeOptions& o) {
                    o.max_value_bytes = 4096;
                    o.max_body_bytes = 4096;
                  }),
                  "body equal to value");
}

// Blocking reads hold a thread each: at least one must be left for others.
TEST(KvServeOptionsTest, http_threads_must_exceed_max_waiters) {
  expect_rejected(with([](ServeOptions& o) {
                    o.max_waiters = 64;
                    o.http_threads = 64;
                  }),
                  "http-threads", "equal");
  expect_rejected(with([](ServeOptions& o) {
                    o.max_waiters = 64;
                    o.http_threads = 10;
                  }),
                  "http-threads", "fewer");
  expect_accepted(with([](ServeOptions& o) {
                    o.max_waiters = 64;
                    o.http_threads = 65;
                  }),
                  "one more");
}

// ---------------------------------------------------------------------------
// The parsers

TEST(KvServeOptionsTest, parse_host_port_splits_at_the_last_colon) {
  Result<HostPort> hp = parse_host_port("example.com:8080", "x");
  ASSERT_TRUE(hp.is_ok()) << hp.status();
  EXPECT_EQ(hp->host, "example.com");
  EXPECT_EQ(hp->port, 8080);

  hp = parse_host_port("[::1]:65535", "x");
  ASSERT_TRUE(hp.is_ok()) << hp.status();
  EXPECT_EQ(hp->host, "[::1]");
  EXPECT_EQ(hp->port, 65535);

  hp = parse_host_port("h:1", "x");
  ASSERT_TRUE(hp.is_ok()) << hp.status();
  EXPECT_EQ(hp->host, "h");
  EXPECT_EQ(hp->port, 1);
}

TEST(KvServeOptionsTest, parse_host_port_rejects_what_is_not_host_and_port) {
  for (const char* bad : {"", ":", "host", "host:", ":80", "host:65536", "host:4294967296",
                          "host:99999999999999999999", "host:-1", "host:+80", "host: 80",
                          "host:80 ", "host:8o", "host:0x50"}) {
    Result<HostPort> hp = parse_host_port(bad, "some-flag");
    ASSERT_FALSE(hp.is_ok()) << "accepted '" << bad << "'";
    EXPECT_EQ(hp.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(hp.status().message(), StartsWith("--some-flag:")) << bad;
  }
}

TEST(KvServeOptionsTest, parse_member_list_maps_each_id_to_its_address) {
  Result<std::map<std::uint64_t, std::string>> members =
      parse_member_list("3=c:7003,1=a:7001,18446744073709551615=z:1", "members");
  ASSERT_TRUE(members.is_ok()) << members.status();
  EXPECT_EQ(*members, (std::map<std::uint64_t, std::string>{
                          {1, "a:7001"}, {3, "c:7003"}, {18446744073709551615ULL, "z:1"}}));
}

TEST(KvServeOptionsTest, parse_member_list_rejects_empty_and_malformed_lists) {
  for (const char* bad : {"", ",", "1", "1=", "=a:1", "0=a:1", "1=a", "1=a:1,1=b:2", "a=b:1",
                          " 1=a:1", "1=a:1, 2=b:2"}) {
    Result<std::map<std::uint64_t, std::string>> members = parse_member_list(bad, "peers");
    ASSERT_FALSE(members.is_ok()) << "accepted '" << bad << "'";
    EXPECT_EQ(members.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(members.status().message(), StartsWith("--peers:")) << bad;
  }
}

// An empty item is refused first and in the middle ("1=a:1,,2=b:2"), so a
// trailing one should be too.
TEST(KvServeOptionsTest, parse_member_list_rejects_a_trailing_empty_item) {
  Result<std::map<std::uint64_t, std::string>> members = parse_member_list("1=a:1,", "members");
  EXPECT_FALSE(members.is_ok());
  expect_rejected(with([](ServeOptions& o) {
                    o.members.clear();
                    o.http_members.clear();
                    o.join = "10.0.0.1:8001,";
                  }),
                  "join", "trailing comma");
}

TEST(KvServeOptionsTest, wait_durations_take_ms_s_m_or_plain_seconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_wait_duration("500ms"), milliseconds(500));
  EXPECT_EQ(parse_wait_duration("10s"), milliseconds(10'000));
  EXPECT_EQ(parse_wait_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_wait_duration("7"), milliseconds(7'000));
  EXPECT_EQ(parse_wait_duration("0ms"), milliseconds(0));
  for (const char* bad : {"", "s", "ms", "10h", "1.5s", "-1s", " 1s", "1s ", "10 s",
                          "99999999999999999999s", "1000000001ms"}) {
    EXPECT_FALSE(parse_wait_duration(bad).has_value()) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace keel::kv
