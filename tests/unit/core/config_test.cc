// CoreConfig::validate: a node refuses settings that would break safety or
// liveness, and says why.
#include "core/config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

CoreConfig valid() {
  CoreConfig config;
  config.id = S(1);
  return config;
}

void expect_invalid(const CoreConfig& config) {
  Status status = config.validate();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status;
  EXPECT_FALSE(status.message().empty());
}

TEST(CoreConfig, DefaultsWithAnIdAreValid) { EXPECT_TRUE(valid().validate().is_ok()); }

TEST(CoreConfig, ServerIdZeroIsRejected) {
  CoreConfig config = valid();
  config.id = kNoServer;
  expect_invalid(config);
}

TEST(CoreConfig, ZeroHeartbeatIntervalIsRejected) {
  CoreConfig config = valid();
  config.heartbeat_interval_ticks = 0;
  expect_invalid(config);
}

TEST(CoreConfig, ElectionTimeoutNotAboveTheHeartbeatIntervalIsRejected) {
  CoreConfig config = valid();
  config.heartbeat_interval_ticks = 5;
  config.election_timeout_ticks = 5;
  expect_invalid(config);
  config.election_timeout_ticks = 4;
  expect_invalid(config);
  config.election_timeout_ticks = 6;
  EXPECT_TRUE(config.validate().is_ok());
}

TEST(CoreConfig, EveryZeroBoundIsRejected) {
  const std::vector<void (*)(CoreConfig&)> zero_one_bound = {
      [](CoreConfig& c) { c.max_inflight_appends = 0; },
      [](CoreConfig& c) { c.max_inflight_bytes = 0; },
      [](CoreConfig& c) { c.max_append_entries = 0; },
      [](CoreConfig& c) { c.max_append_bytes = 0; },
      [](CoreConfig& c) { c.max_apply_batch = 0; },
      [](CoreConfig& c) { c.max_uncommitted_bytes = 0; },
      [](CoreConfig& c) { c.max_pending_reads = 0; },
  };
  for (std::size_t i = 0; i < zero_one_bound.size(); ++i) {
    SCOPED_TRACE("bound #" + std::to_string(i));
    CoreConfig config = valid();
    zero_one_bound[i](config);
    expect_invalid(config);
  }
}

TEST(CoreConfig, LeaseWithoutCheckQuorumIsRejected) {
  CoreConfig config = valid();
  config.lease_ticks = 5;
  config.check_quorum = false;
  expect_invalid(config);
  config.check_quorum = true;
  EXPECT_TRUE(config.validate().is_ok());
}

TEST(CoreConfig, LeaseLongerThanTheElectionTimeoutAllowsForDriftIsRejected) {
  CoreConfig config = valid();
  config.election_timeout_ticks = 10;
  config.lease_drift_percent = 10;
  config.lease_ticks = 9;  // 9 * 110% = 9.9 ticks <= 10
  EXPECT_TRUE(config.validate().is_ok());
  config.lease_ticks = 10;  // 10 * 110% = 11 ticks > 10
  expect_invalid(config);
  config.lease_drift_percent = 0;  // exactly the election timeout, no drift
  EXPECT_TRUE(config.validate().is_ok());
}

}  // namespace
}  // namespace keel::core
