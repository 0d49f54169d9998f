// sim/linearizability.h — decides whether a History of key-value register
// operations is linearizable (Herlihy & Wing 1990): whether every operation
// can be given one instant between its call and its return such that, taken in
// that order, the operations behave like a single register per key (absent or
// holding a value) with put, get, compare-and-set and delete.
//
// The search is Wing & Gong's, with Lowe's memoization ("Testing for
// linearizability", 2017), as in Porcupine: per key, call and return events
// in a doubly linked list; an operation called before the first return still
// in the list may go next; if the register accepts it and (linearized set +
// op, new value) has not been explored, linearize it (lift it out of the
// list) and go on; when no candidate is left, backtrack. An empty list means
// linearizable; backtracking past the start, not.
// Linearizability is local (Herlihy & Wing, Theorem 1), so each key is checked
// on its own (P-compositionality); keys are checked smallest first, so that a
// definite violation on a small key is found before a hard key eats the budget.
//
// How outcomes count:
//   kOk       the operation happened between call and return, with its output.
//   kFailed   it certainly had no effect: it is left out.
//   kUnknown  a put, delete or cas may take effect at any instant after its
//             call, or never; its output is not checked. A get with an unknown
//             outcome constrains nothing and is left out.
//   checked = false (stale reads): left out.
//
// The search is exponential in the worst case (the problem is NP-complete);
// what keeps it fast on real histories, without changing any verdict (the
// reasons are in linearizability.cc, and a test compares the verdicts with a
// brute-force search on thousands of small random histories):
//  - A read the register allows now is linearized at once, never tried at
//    other points; writes are tried earliest return first.
//  - Unknown outcomes are tried last, and only where they give the register a
//    value that some pending operation needs; unknown operations with the same
//    effect are interchangeable, so only call order is tried among them.
//  - A state with more unknown operations linearized than an explored state
//    that is otherwise the same is not explored again: unknown operations
//    never have to take effect.
//  - Values that no get returned and no cas expected are indistinguishable to
//    every operation, so the search treats them as one value. (Write unique
//    values, as REFERENCES.md advises, so that a read names its write.)
// Histories within the advised shape (per key, about ten clients and ten
// thousand operations) take milliseconds when linearizable; proving a
// violation explores what could have happened up to it, which costs more.
//
// The search is bounded (CheckOptions::max_states_explored). A search that
// hits the bound reports budget_exhausted with linearizable = false: "not
// proven", never a silent pass.
//
// Thread safety: check_linearizable is a pure function of its arguments.
#pragma once

#include <cstdint>
#include <string>

#include "sim/history.h"

namespace keel::sim {

struct CheckOptions {
  // States are distinct (set of linearized operations, register value) pairs,
  // over all keys. Each costs about 75 bytes, so the default bounds memory
  // near 750 MB; a linearizable history needs about one per operation, a
  // violation in a busy key up to a few hundred per operation before it.
  std::uint64_t max_states_explored = 10'000'000;
  // On a violation, search for the shortest failing prefix and drop the reads
  // it does not need (extra searches, on failure only), bounded by the number
  // of states below over all of them. Without, failing_history is the whole of
  // the failing key.
  bool explain = true;
  std::uint64_t max_explanation_states = 2'000'000;
};

struct CheckResult {
  // True only if every key was proven linearizable.
  bool linearizable = false;
  // The key that is not linearizable, or whose search ran out of budget.
  std::string key_that_failed;
  // Readable: on a violation, the operation whose return makes the history
  // non-linearizable and the operations it conflicts with, one per line in
  // the text form of sim/history.h; on budget exhaustion, where it stopped.
  std::string explanation;
  // States of the verdict search (explanation searches not included).
  std::uint64_t states_explored = 0;
  // The bound was hit: the answer is unknown, and linearizable is false.
  bool budget_exhausted = false;
  // On a violation: operations of key_that_failed only, forming a history that
  // is itself not linearizable and as small as the explanation search could
  // make it (the shortest failing prefix; operations still running at its end
  // become unknown; reads it does not need dropped). Write it with to_text().
  History failing_history;
};

CheckResult check_linearizable(const History& history, const CheckOptions& options = {});

}  // namespace keel::sim
