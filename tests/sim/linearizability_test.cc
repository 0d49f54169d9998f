// The linearizability checker: hand-made histories whose verdict is known,
// unknown outcomes, per-key independence, the state budget, explanations, and
// randomized histories that are linearizable by construction until one read is
// corrupted.
#include "sim/linearizability.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/prng.h"

namespace keel::sim {
namespace {

// --- vocabulary ------------------------------------------------------------------

Operation put(std::string key, std::string value, std::int64_t call, std::int64_t ret) {
  return {.client = 1,
          .key = std::move(key),
          .kind = OpKind::kPut,
          .value = std::move(value),
          .call_time = call,
          .return_time = ret};
}
Operation get(std::string key, std::optional<std::string> output, std::int64_t call,
              std::int64_t ret) {
  return {.client = 2,
          .key = std::move(key),
          .kind = OpKind::kGet,
          .output = std::move(output),
          .call_time = call,
          .return_time = ret};
}
Operation cas(std::string key, std::string expected, std::string value, bool succeeded,
              std::int64_t call, std::int64_t ret) {
  return {.client = 3,
          .key = std::move(key),
          .kind = OpKind::kCas,
          .value = std::move(value),
          .expected = std::move(expected),
          .cas_succeeded = succeeded,
          .call_time = call,
          .return_time = ret};
}
Operation del(std::string key, std::int64_t call, std::int64_t ret) {
  return {.client = 4,
          .key = std::move(key),
          .kind = OpKind::kDelete,
          .call_time = call,
          .return_time = ret};
}
Operation with(Operation op, Outcome outcome) {
  op.outcome = outcome;
  return op;
}
Operation unchecked(Operation op) {
  op.checked = false;
  return op;
}

const std::nullopt_t kAbsentValue = std::nullopt;

History history(std::initializer_list<Operation> ops) {
  History h;
  for (const Operation& op : ops) h.record(op);
  return h;
}

::testing::AssertionResult linearizable(const History& h) {
  const CheckResult r = check_linearizable(h);
  if (r.budget_exhausted) return ::testing::AssertionFailure() << "budget exhausted";
  if (!r.linearizable) return ::testing::AssertionFailure() << r.explanation;
  return ::testing::AssertionSuccess() << "linearizable (" << r.states_explored << " states)";
}

// --- single register -------------------------------------------------------------

TEST(Linearizability, EmptyHistoryIsLinearizable) { EXPECT_TRUE(linearizable(History{})); }

TEST(Linearizability, SequentialPutsAndGetsFollowTheRegister) {
  EXPECT_TRUE(
      linearizable(history({get("k", kAbsentValue, 0, 1), put("k", "a", 2, 3), get("k", "a", 4, 5),
                            put("k", "b", 6, 7), get("k", "b", 8, 9)})));
}

TEST(Linearizability, StaleReadAfterACompletedWriteIsNotLinearizable) {
  const History h = history({put("k", "a", 0, 10), put("k", "b", 20, 30), get("k", "a", 40, 50)});
  const CheckResult r = check_linearizable(h);
  EXPECT_FALSE(r.linearizable);
  EXPECT_FALSE(r.budget_exhausted);
  EXPECT_EQ(r.key_that_failed, "k");
}

TEST(Linearizability, ReadOfAValueNeverWrittenIsNotLinearizable) {
  EXPECT_FALSE(linearizable(history({put("k", "a", 0, 10), get("k", "zzz", 20, 30)})));
}

TEST(Linearizability, ReadBeforeTheWriteWasCalledCannotSeeIt) {
  EXPECT_FALSE(linearizable(history({get("k", "a", 0, 10), put("k", "a", 11, 20)})));
}

TEST(Linearizability, OverlappingWriteAndReadCanBeOrderedEitherWay) {
  // The read overlaps the write, so it may see the old or the new value.
  EXPECT_TRUE(linearizable(history({put("k", "a", 0, 10), get("k", kAbsentValue, 5, 15)})));
  EXPECT_TRUE(linearizable(history({put("k", "a", 0, 10), get("k", "a", 5, 15)})));
  // Touching intervals count as overlapping (calls before returns on ties).
  EXPECT_TRUE(linearizable(history({put("k", "a", 0, 10), get("k", kAbsentValue, 10, 15)})));
}

TEST(Linearizability, ConcurrentWritesMayLandInEitherOrderButOnlyOne) {
  const Operation a = put("k", "a", 0, 10);
  const Operation b = put("k", "b", 0, 10);
  EXPECT_TRUE(linearizable(history({a, b, get("k", "a", 11, 12), get("k", "a", 13, 14)})));
  EXPECT_TRUE(linearizable(history({a, b, get("k", "b", 11, 12), get("k", "b", 13, 14)})));
  // a then b, then a again: the writes would have had to happen twice.
  EXPECT_FALSE(linearizable(
      history({a, b, get("k", "a", 11, 12), get("k", "b", 13, 14), get("k", "a", 15, 16)})));
}

TEST(Linearizability, TwoReadersMustAgreeOnTheOrderOfConcurrentWrites) {
  // Reader 1 sees a then b, reader 2 sees b then a, all while both writes run.
  EXPECT_FALSE(
      linearizable(history({put("k", "a", 0, 100), put("k", "b", 0, 100), get("k", "a", 10, 20),
                            get("k", "b", 30, 40), get("k", "b", 10, 20), get("k", "a", 30, 40)})));
}

TEST(Linearizability, CasSucceedsExactlyWhenTheRegisterHoldsTheExpectedValue) {
  EXPECT_TRUE(linearizable(
      history({put("k", "a", 0, 1), cas("k", "a", "b", true, 2, 3), get("k", "b", 4, 5),
               cas("k", "a", "c", false, 6, 7), get("k", "b", 8, 9)})));
  // A second swap from "a" after the first one completed.
  EXPECT_FALSE(linearizable(history(
      {put("k", "a", 0, 1), cas("k", "a", "b", true, 2, 3), cas("k", "a", "c", true, 4, 5)})));
  // A cas that says "compare failed" while the register certainly held "a".
  EXPECT_FALSE(linearizable(history({put("k", "a", 0, 1), cas("k", "a", "b", false, 2, 3)})));
  // A successful cas whose new value is never seen.
  EXPECT_FALSE(linearizable(
      history({put("k", "a", 0, 1), cas("k", "a", "b", true, 2, 3), get("k", "a", 4, 5)})));
}

TEST(Linearizability, CasOnAnAbsentKeyNeverSwaps) {
  EXPECT_TRUE(
      linearizable(history({cas("k", "a", "b", false, 0, 1), get("k", kAbsentValue, 2, 3)})));
  EXPECT_FALSE(linearizable(history({cas("k", "a", "b", true, 0, 1)})));
}

TEST(Linearizability, ReadsAmongConcurrentWritesDoNotMultiplyTheSearch) {
  // Eight writes and eight reads all running at once, then a read of a value
  // never written. Every order of the writes must be refuted; a read the
  // register allows is placed at once instead of being tried at every point
  // among the writes, which would multiply the states by the reads' subsets.
  History h;
  for (int i = 0; i < 8; ++i) {
    h.record(put("k", "v" + std::to_string(i), 0, 100));
    h.record(get("k", "v" + std::to_string(i), 0, 100));
  }
  h.record(get("k", "never written", 200, 201));
  const CheckResult r = check_linearizable(h, {.max_states_explored = 1'000'000});
  EXPECT_FALSE(r.linearizable);
  EXPECT_FALSE(r.budget_exhausted);
  EXPECT_LT(r.states_explored, 5'000U);  // 2^8 sets of writes times 8 values; 35'000 unforced
}

TEST(Linearizability, ConcurrentCasesOnlyOneOfWhichCanWin) {
  const Operation first = cas("k", "a", "b", true, 10, 20);
  const Operation second = cas("k", "a", "c", true, 10, 20);
  EXPECT_FALSE(linearizable(history({put("k", "a", 0, 1), first, second})));
  EXPECT_TRUE(linearizable(history(
      {put("k", "a", 0, 1), first, cas("k", "a", "c", false, 10, 20), get("k", "b", 21, 22)})));
}

TEST(Linearizability, DeleteMakesTheKeyAbsent) {
  EXPECT_TRUE(
      linearizable(history({put("k", "a", 0, 1), del("k", 2, 3), get("k", kAbsentValue, 4, 5)})));
  EXPECT_FALSE(linearizable(history({put("k", "a", 0, 1), del("k", 2, 3), get("k", "a", 4, 5)})));
  EXPECT_FALSE(
      linearizable(history({put("k", "a", 0, 1), del("k", 2, 3), cas("k", "a", "b", true, 4, 5)})));
}

// --- outcomes --------------------------------------------------------------------

TEST(Linearizability, UnknownPutObservedLaterTookEffect) {
  EXPECT_TRUE(linearizable(history({with(put("k", "a", 0, 5), Outcome::kUnknown),
                                    get("k", kAbsentValue, 10, 20), get("k", "a", 100, 110)})));
}

TEST(Linearizability, UnknownPutNeverObservedMayNeverHaveHappened) {
  EXPECT_TRUE(
      linearizable(history({put("k", "a", 0, 1), with(put("k", "x", 2, 3), Outcome::kUnknown),
                            get("k", "a", 10, 20), get("k", "a", 30, 40)})));
}

TEST(Linearizability, UnknownPutCannotBeObservedAndThenUnobserved) {
  EXPECT_FALSE(
      linearizable(history({put("k", "a", 0, 1), with(put("k", "x", 2, 3), Outcome::kUnknown),
                            get("k", "x", 10, 20), get("k", "a", 30, 40)})));
}

TEST(Linearizability, UnknownPutTakesEffectOnlyAfterItsCall) {
  EXPECT_FALSE(linearizable(
      history({get("k", "x", 0, 10), with(put("k", "x", 20, 30), Outcome::kUnknown)})));
}

TEST(Linearizability, UnknownPutNobodyReadsCanStillExplainAFailedCas) {
  // The register held "a"; a cas expecting "a" failed. Only the unknown put,
  // whose value no one ever read, can have changed it in between.
  const Operation before = put("k", "a", 0, 10);
  const Operation failed_cas = cas("k", "a", "b", false, 30, 40);
  EXPECT_TRUE(
      linearizable(history({before, with(put("k", "x", 20, 21), Outcome::kUnknown), failed_cas})));
  EXPECT_FALSE(linearizable(history({before, failed_cas})));
}

TEST(Linearizability, UnknownCasMaySwapOnlyIfTheRegisterHeldItsExpectedValue) {
  const Operation maybe = with(cas("k", "a", "b", true, 2, 3), Outcome::kUnknown);
  EXPECT_TRUE(linearizable(
      history({put("k", "a", 0, 1), maybe, get("k", "a", 10, 11), get("k", "b", 12, 13)})));
  EXPECT_TRUE(linearizable(history({put("k", "a", 0, 1), maybe, get("k", "a", 10, 11)})));
  EXPECT_FALSE(linearizable(history({put("k", "c", 0, 1), maybe, get("k", "b", 10, 11)})));
  EXPECT_FALSE(linearizable(
      history({put("k", "a", 0, 1), maybe, get("k", "b", 10, 11), get("k", "a", 12, 13)})));
}

TEST(Linearizability, UnknownDeleteMayOrMayNotHaveHappened) {
  const Operation maybe = with(del("k", 2, 3), Outcome::kUnknown);
  EXPECT_TRUE(linearizable(history(
      {put("k", "a", 0, 1), maybe, get("k", "a", 10, 11), get("k", kAbsentValue, 12, 13)})));
  EXPECT_FALSE(linearizable(history(
      {put("k", "a", 0, 1), maybe, get("k", kAbsentValue, 10, 11), get("k", "a", 12, 13)})));
}

TEST(Linearizability, FailedWriteHadNoEffect) {
  EXPECT_TRUE(linearizable(history(
      {put("k", "a", 0, 1), with(put("k", "x", 2, 3), Outcome::kFailed), get("k", "a", 10, 20)})));
  EXPECT_FALSE(
      linearizable(history({with(put("k", "x", 0, 1), Outcome::kFailed), get("k", "x", 10, 20)})));
}

TEST(Linearizability, ReadsOfUnknownOutcomeAndUncheckedReadsConstrainNothing) {
  EXPECT_TRUE(linearizable(
      history({put("k", "a", 0, 1), with(get("k", "nonsense", 2, 3), Outcome::kUnknown),
               unchecked(get("k", "stale", 4, 5)), get("k", "a", 6, 7)})));
  // A checked one with the same output is caught.
  EXPECT_FALSE(linearizable(history({put("k", "a", 0, 1), get("k", "stale", 4, 5)})));
}

TEST(Linearizability, ManyUnknownWritesBeforeReadsOfTheOlderValueStayCheap) {
  // 60 timed-out puts and deletes nobody observes, then reads of the value
  // before them: the unknown writes wait until the end instead of being tried
  // before every read.
  History h;
  h.record(put("k", "old", 0, 1));
  for (int i = 0; i < 60; ++i) {
    h.record(with(put("k", "lost" + std::to_string(i), 10 + i, 11 + i), Outcome::kUnknown));
    h.record(with(del("k", 10 + i, 11 + i), Outcome::kUnknown));
  }
  for (int i = 0; i < 200; ++i) h.record(get("k", "old", 100 + 2 * i, 101 + 2 * i));
  h.record(put("k", "new", 1000, 1001));
  h.record(get("k", "new", 1002, 1003));
  const CheckResult r = check_linearizable(h);
  EXPECT_TRUE(r.linearizable) << r.explanation;
  EXPECT_LT(r.states_explored, 2 * h.size());
}

TEST(Linearizability, ProvingAViolationDoesNotTryEverySubsetOfInterchangeableUnknownWrites) {
  // Readers see the key flip between absent and "a" twenty times, which takes
  // twenty of the unknown deletes and puts of "a"; then one reads a value never
  // written. To prove that impossible the search must exhaust the ways to
  // flip: C(20, k) choices of deletes and puts for each k if each were
  // distinct, one per k since they are alike.
  History h;
  h.record(put("k", "a", 0, 1));
  for (int i = 0; i < 20; ++i) {
    h.record(with(del("k", 2 + i, 3 + i), Outcome::kUnknown));
    h.record(with(put("k", "a", 2 + i, 3 + i), Outcome::kUnknown));
  }
  for (int i = 0; i < 20; ++i) {
    h.record(get("k", kAbsentValue, 100 + 4 * i, 101 + 4 * i));
    h.record(get("k", "a", 102 + 4 * i, 103 + 4 * i));
  }
  h.record(get("k", "never written", 1000, 1001));
  const CheckResult r = check_linearizable(h, {.max_states_explored = 100'000});
  EXPECT_FALSE(r.linearizable);
  EXPECT_FALSE(r.budget_exhausted);
  EXPECT_LT(r.states_explored, 10'000U);
}

TEST(Linearizability, UnknownWritesAreTriedOnlyWhereTheyGiveAValueSomeoneNeeds) {
  // Sixteen timed-out puts of distinct values (each named by some cas, so each
  // is its own value to the search), then a read of a value none of them
  // wrote. Placing them anyway would try their 2^16 subsets.
  History h;
  h.record(put("k", "old", 0, 1));
  for (int i = 0; i < 16; ++i) {
    const std::string value = "lost" + std::to_string(i);
    h.record(cas("k", value, "unused", false, 2, 3));
    h.record(with(put("k", value, 10 + i, 11 + i), Outcome::kUnknown));
  }
  h.record(get("k", "never written", 100, 101));
  const CheckResult r = check_linearizable(h, {.max_states_explored = 100'000});
  EXPECT_FALSE(r.linearizable);
  EXPECT_FALSE(r.budget_exhausted);
  EXPECT_LT(r.states_explored, 100U);
}

// --- keys ------------------------------------------------------------------------

TEST(Linearizability, KeysAreIndependentRegisters) {
  EXPECT_TRUE(linearizable(history({put("x", "1", 0, 1), get("y", kAbsentValue, 2, 3),
                                    put("y", "2", 4, 5), get("x", "1", 6, 7)})));
  // The same value name on another key does not make a read of it valid.
  EXPECT_FALSE(linearizable(history({put("x", "1", 0, 1), get("y", "1", 2, 3)})));
}

TEST(Linearizability, AViolationOnOneKeyIsReportedForThatKey) {
  const History h =
      history({put("good", "a", 0, 10), get("good", "a", 20, 30), put("bad", "a", 0, 10),
               put("bad", "b", 20, 30), get("bad", "a", 40, 50), put("good", "c", 40, 50)});
  const CheckResult r = check_linearizable(h);
  EXPECT_FALSE(r.linearizable);
  EXPECT_EQ(r.key_that_failed, "bad");
}

// --- budget and explanations -------------------------------------------------------

// Twelve puts all running at once and a read of a value none of them wrote:
// the search must try every subset of the puts before giving up.
History hard_violation() {
  History h;
  for (int i = 0; i < 12; ++i) h.record(put("k", "v" + std::to_string(i), 0, 100));
  h.record(get("k", "never", 50, 60));
  return h;
}

TEST(Linearizability, RunningOutOfStatesIsReportedAndNeverAPass) {
  const CheckResult r = check_linearizable(hard_violation(), {.max_states_explored = 100});
  EXPECT_TRUE(r.budget_exhausted);
  EXPECT_FALSE(r.linearizable);
  EXPECT_EQ(r.key_that_failed, "k");
  EXPECT_EQ(r.states_explored, 100U);
  EXPECT_NE(r.explanation.find("max_states_explored"), std::string::npos) << r.explanation;

  const CheckResult full = check_linearizable(hard_violation());
  EXPECT_FALSE(full.budget_exhausted);
  EXPECT_FALSE(full.linearizable);
  EXPECT_GT(full.states_explored, 100U);
}

TEST(Linearizability, BudgetIsSharedAcrossKeys) {
  History h;
  for (int i = 0; i < 8; ++i) h.record(put("k" + std::to_string(i), "a", 0, 1));
  const CheckResult r = check_linearizable(h, {.max_states_explored = 5});
  EXPECT_TRUE(r.budget_exhausted);
  EXPECT_FALSE(r.linearizable);
  EXPECT_TRUE(check_linearizable(h, {.max_states_explored = 8}).linearizable);
}

TEST(Linearizability, ExplanationShowsTheShortestFailingPrefixWithoutUnneededReads) {
  History h;
  h.record(put("k", "a", 0, 10));
  for (int i = 0; i < 50; ++i) h.record(get("k", "a", 20 + 2 * i, 21 + 2 * i));
  h.record(put("k", "b", 200, 210));
  const Operation stale = get("k", "a", 220, 230);
  h.record(stale);
  for (int i = 0; i < 50; ++i) h.record(put("k", "later" + std::to_string(i), 300 + i, 301 + i));

  const CheckResult r = check_linearizable(h);
  ASSERT_FALSE(r.linearizable);
  EXPECT_NE(r.explanation.find("It fails as soon as this operation returns:\n  " + to_text(stale)),
            std::string::npos)
      << r.explanation;
  // The two writes and the stale read are all it takes.
  EXPECT_EQ(r.failing_history, history({put("k", "a", 0, 10), put("k", "b", 200, 210), stale}));
  EXPECT_FALSE(check_linearizable(r.failing_history).linearizable);
}

TEST(Linearizability, FailingHistorySurvivesItsTextFormAndStillFails) {
  const History h = history({put("k", "a", 0, 10), with(put("k", "x", 5, 6), Outcome::kUnknown),
                             get("k", "x", 20, 30), get("k", "a", 40, 50)});
  const CheckResult r = check_linearizable(h);
  ASSERT_FALSE(r.linearizable);
  Result<History> reread = History::from_text(r.failing_history.to_text());
  ASSERT_TRUE(reread.is_ok()) << reread.status();
  EXPECT_EQ(*reread, r.failing_history);
  const CheckResult again = check_linearizable(*reread);
  EXPECT_FALSE(again.linearizable);
  EXPECT_EQ(again.key_that_failed, "k");
}

TEST(Linearizability, WithoutExplanationTheFailingHistoryIsTheWholeKey) {
  const History h = history({put("k", "a", 0, 10), put("k", "b", 20, 30), get("k", "a", 40, 50),
                             put("other", "z", 0, 1)});
  const CheckResult r = check_linearizable(h, {.explain = false});
  ASSERT_FALSE(r.linearizable);
  EXPECT_EQ(r.failing_history.size(), 3U);
}

// --- against brute force --------------------------------------------------------

// Linearizability by definition, for a handful of operations: tries every
// order of the operations that respects real time, letting each unknown one
// take effect at any point after its call or not at all.
class BruteForce {
 public:
  explicit BruteForce(const History& h) {
    for (const Operation& op : h.operations()) {
      if (!op.checked || op.outcome == Outcome::kFailed) continue;
      if (op.kind == OpKind::kGet && op.outcome == Outcome::kUnknown) continue;
      ops_.push_back(op);
    }
  }

  bool linearizable() {
    std::vector<bool> placed(ops_.size(), false);
    return search(placed, std::nullopt);
  }

 private:
  bool search(std::vector<bool>& placed, const std::optional<std::string>& value) {
    bool known_left = false;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      known_left = known_left || (!placed[i] && ops_[i].outcome == Outcome::kOk);
    }
    if (!known_left) return true;  // unknown ones left may never take effect
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (placed[i] || !may_go_next(placed, i)) continue;
      std::optional<std::string> after;
      if (!step(ops_[i], value, after)) continue;
      placed[i] = true;
      const bool found = search(placed, after);
      placed[i] = false;
      if (found) return true;
    }
    return false;
  }

  // Every operation of known outcome that returned before this one was called
  // is placed already.
  bool may_go_next(const std::vector<bool>& placed, std::size_t i) const {
    for (std::size_t j = 0; j < ops_.size(); ++j) {
      if (!placed[j] && ops_[j].outcome == Outcome::kOk &&
          ops_[j].return_time < ops_[i].call_time) {
        return false;
      }
    }
    return true;
  }

  static bool step(const Operation& op, const std::optional<std::string>& value,
                   std::optional<std::string>& after) {
    const bool unknown = op.outcome == Outcome::kUnknown;
    after = value;
    switch (op.kind) {
      case OpKind::kPut:
        after = op.value;
        return true;
      case OpKind::kDelete:
        after.reset();
        return true;
      case OpKind::kGet:
        return op.output == value;
      case OpKind::kCas: {
        const bool holds = value.has_value() && *value == op.expected;
        if (holds && (unknown || op.cas_succeeded)) after = op.value;
        return unknown || holds == op.cas_succeeded;
      }
    }
    return false;
  }

  std::vector<Operation> ops_;
};

// Few values, reused, so that the histories are as tangled as possible.
History small_random_history(core::Prng& prng) {
  static const char* const kValues[] = {"a", "b", "c"};
  History h;
  const std::size_t count = prng.uniform(2, 9);
  for (std::size_t i = 0; i < count; ++i) {
    Operation op;
    op.client = i;
    op.key = "k";
    op.kind = static_cast<OpKind>(prng.uniform(0, 4));
    op.value = kValues[prng.uniform(0, 3)];
    op.expected = kValues[prng.uniform(0, 3)];
    if (prng.uniform(0, 4) != 0) op.output = kValues[prng.uniform(0, 3)];
    op.cas_succeeded = prng.uniform(0, 2) == 0;
    const std::uint64_t fate = prng.uniform(0, 10);
    op.outcome = fate < 7 ? Outcome::kOk : fate < 9 ? Outcome::kUnknown : Outcome::kFailed;
    op.checked = prng.uniform(0, 20) != 0;
    op.call_time = static_cast<std::int64_t>(prng.uniform(0, 20));
    op.return_time = op.call_time + static_cast<std::int64_t>(prng.uniform(0, 10));
    h.record(std::move(op));
  }
  return h;
}

TEST(Linearizability, AgreesWithBruteForceOnSmallRandomHistories) {
  core::Prng prng(42);
  std::size_t linearizable_count = 0;
  constexpr std::size_t kHistories = 20'000;
  for (std::size_t i = 0; i < kHistories; ++i) {
    const History h = small_random_history(prng);
    const bool expected = BruteForce(h).linearizable();
    const CheckResult r = check_linearizable(h);
    ASSERT_FALSE(r.budget_exhausted);
    ASSERT_EQ(r.linearizable, expected) << h.to_text() << r.explanation;
    if (!expected) {
      ASSERT_FALSE(check_linearizable(r.failing_history).linearizable) << h.to_text();
    }
    linearizable_count += expected ? 1 : 0;
  }
  // Both verdicts are well represented, or the comparison proves little.
  EXPECT_GT(linearizable_count, kHistories / 5);
  EXPECT_LT(linearizable_count, kHistories * 4 / 5);
}

// --- randomized --------------------------------------------------------------------

// A history that is linearizable by construction: operations are applied one
// at a time to a map of registers, the i-th at instant 100 * i, and each gets
// an interval around its instant, so that up to about 2 * spread / 100 run at
// once. Writes write unique values.
struct Generated {
  History history;
  std::size_t unknown = 0;
};

Generated generate(std::uint64_t seed, std::size_t count, std::size_t keys, std::int64_t spread) {
  core::Prng prng(seed);
  std::map<std::string, std::optional<std::string>> registers;
  std::vector<std::string> written;  // every value written so far, for failing cases
  Generated out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::int64_t instant = 1'000'000 + 100 * static_cast<std::int64_t>(i);
    Operation op;
    op.client = prng.uniform(1, 11);
    op.key = "k" + std::to_string(prng.uniform(0, keys));
    op.call_time = instant - static_cast<std::int64_t>(prng.uniform(0, spread));
    op.return_time = instant + static_cast<std::int64_t>(prng.uniform(0, spread));
    std::optional<std::string>& reg = registers[op.key];
    const std::uint64_t dice = prng.uniform(0, 100);
    const std::string fresh = "v" + std::to_string(i);
    if (dice < 35) {
      op.kind = OpKind::kPut;
      op.value = fresh;
    } else if (dice < 75) {
      op.kind = OpKind::kGet;
    } else if (dice < 93) {
      op.kind = OpKind::kCas;
      op.value = fresh;
      const bool aim_right = reg.has_value() && prng.uniform(0, 100) < 60;
      op.expected = aim_right         ? *reg
                    : written.empty() ? "none"
                                      : written[prng.uniform(0, written.size())];
    } else {
      op.kind = OpKind::kDelete;
    }
    const std::uint64_t fate = prng.uniform(0, 100);
    bool takes_effect = true;
    if (fate < 4) {
      op.outcome = Outcome::kUnknown;
      takes_effect = prng.uniform(0, 2) == 0;
      ++out.unknown;
    } else if (fate < 7) {
      op.outcome = Outcome::kFailed;
      takes_effect = false;
    }
    if (takes_effect) {
      switch (op.kind) {
        case OpKind::kPut:
          reg = op.value;
          break;
        case OpKind::kDelete:
          reg.reset();
          break;
        case OpKind::kGet:
          op.output = reg;
          break;
        case OpKind::kCas:
          op.cas_succeeded = reg.has_value() && *reg == op.expected;
          if (op.cas_succeeded) reg = op.value;
          break;
      }
    }
    if (op.kind == OpKind::kGet && prng.uniform(0, 100) < 3) {
      op.checked = false;  // a stale read: anything goes
      op.output = "whatever" + std::to_string(i);
    }
    if (op.kind == OpKind::kPut || (op.kind == OpKind::kCas && op.cas_succeeded)) {
      written.push_back(op.value);
    }
    out.history.record(std::move(op));
  }
  return out;
}

bool is_checked_successful_get(const Operation& op) {
  return op.kind == OpKind::kGet && op.outcome == Outcome::kOk && op.checked;
}

// Makes one read return a value first written by a put called strictly after
// the read returned: no order can explain it.
std::optional<std::size_t> corrupt_with_a_future_value(History& h, std::uint64_t seed) {
  core::Prng prng(seed);
  std::vector<Operation> ops = h.operations();
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::size_t r = prng.uniform(0, ops.size() / 2);
    if (!is_checked_successful_get(ops[r])) continue;
    for (std::size_t w = r + 1; w < ops.size(); ++w) {
      if (ops[w].kind == OpKind::kPut && ops[w].key == ops[r].key &&
          ops[w].call_time > ops[r].return_time) {
        ops[r].output = ops[w].value;
        h = History();
        for (Operation& op : ops) h.record(std::move(op));
        return r;
      }
    }
  }
  return std::nullopt;
}

// Makes one read return a value overwritten before it was called: put P, then
// a completed write Q called after P returned, then the read called after Q
// returned.
std::optional<std::size_t> corrupt_with_a_stale_value(History& h, std::uint64_t seed) {
  core::Prng prng(seed);
  std::vector<Operation> ops = h.operations();
  auto is_ok_write = [](const Operation& op) {
    return op.outcome == Outcome::kOk && op.checked &&
           (op.kind == OpKind::kPut || op.kind == OpKind::kDelete ||
            (op.kind == OpKind::kCas && op.cas_succeeded));
  };
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::size_t r = prng.uniform(ops.size() / 2, ops.size());
    if (!is_checked_successful_get(ops[r])) continue;
    for (std::size_t q = r; q-- > 0;) {
      if (!is_ok_write(ops[q]) || ops[q].key != ops[r].key ||
          ops[q].return_time >= ops[r].call_time) {
        continue;
      }
      for (std::size_t p = q; p-- > 0;) {
        if (ops[p].kind == OpKind::kPut && ops[p].outcome == Outcome::kOk &&
            ops[p].key == ops[r].key && ops[p].return_time < ops[q].call_time &&
            ops[p].value != ops[r].output) {
          ops[r].output = ops[p].value;
          h = History();
          for (Operation& op : ops) h.record(std::move(op));
          return r;
        }
      }
    }
  }
  return std::nullopt;
}

struct RandomCase {
  std::uint64_t seed;
  std::size_t operations;
  std::size_t keys;
  std::int64_t spread;
};

// Several keys with moderate concurrency, and one busy key with up to about
// sixteen operations running at once.
constexpr RandomCase kRandomCases[] = {
    {1, 4000, 4, 400}, {2, 4000, 4, 400}, {3, 4000, 8, 800}, {4, 3000, 1, 800}, {5, 3000, 2, 300},
};

TEST(LinearizabilityRandomized, HistoriesFromASequentialRunAreLinearizable) {
  for (const RandomCase& c : kRandomCases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed));
    const Generated g = generate(c.seed, c.operations, c.keys, c.spread);
    EXPECT_GT(g.unknown, 0U);
    const CheckResult r = check_linearizable(g.history);
    EXPECT_TRUE(r.linearizable) << r.explanation;
    EXPECT_FALSE(r.budget_exhausted);
  }
}

TEST(LinearizabilityRandomized, AReadOfAValueWrittenOnlyAfterItReturnedIsCaught) {
  for (const RandomCase& c : kRandomCases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed));
    Generated g = generate(c.seed, c.operations, c.keys, c.spread);
    const std::optional<std::size_t> corrupted = corrupt_with_a_future_value(g.history, c.seed);
    ASSERT_TRUE(corrupted.has_value());
    const Operation& read = g.history.operations()[*corrupted];
    const CheckResult r = check_linearizable(g.history);
    EXPECT_FALSE(r.linearizable);
    EXPECT_FALSE(r.budget_exhausted);
    EXPECT_EQ(r.key_that_failed, read.key);
    EXPECT_NE(r.explanation.find(to_text(read)), std::string::npos) << r.explanation;
    EXPECT_FALSE(check_linearizable(r.failing_history).linearizable);
  }
}

TEST(LinearizabilityRandomized, AReadOfAnOverwrittenValueIsCaught) {
  for (const RandomCase& c : kRandomCases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed));
    Generated g = generate(c.seed, c.operations, c.keys, c.spread);
    const std::optional<std::size_t> corrupted =
        corrupt_with_a_stale_value(g.history, c.seed + 100);
    ASSERT_TRUE(corrupted.has_value());
    const Operation& read = g.history.operations()[*corrupted];
    const CheckResult r = check_linearizable(g.history);
    EXPECT_FALSE(r.linearizable);
    EXPECT_FALSE(r.budget_exhausted);
    EXPECT_EQ(r.key_that_failed, read.key);
    EXPECT_NE(r.explanation.find(to_text(read)), std::string::npos) << r.explanation;
    EXPECT_FALSE(check_linearizable(r.failing_history).linearizable);
  }
}

}  // namespace
}  // namespace keel::sim
