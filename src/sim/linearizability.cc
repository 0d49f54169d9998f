#include "sim/linearizability.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/check.h"

namespace keel::sim {
namespace {

// --- the register model ------------------------------------------------------

// Register values are small integers during the search. Every value that some
// operation observes (a get's output, a cas's expected value) has its own id;
// all other values share kUnobserved, since no operation can tell them apart.
constexpr std::int32_t kAbsent = 0;
constexpr std::int32_t kUnobserved = 1;
constexpr std::int32_t kFirstObserved = 2;
constexpr std::int32_t kRejected = -1;

enum class Effect : std::uint8_t {
  kWrite,         // put, delete: the register becomes `operand`
  kRead,          // get: the register holds `operand`
  kSwap,          // cas that succeeded: holds `operand`, becomes `new_value`
  kCompareFails,  // cas that did not: holds anything but `operand`
  kMaybeSwap,     // cas of unknown outcome: swaps iff it holds `operand`
};

struct ModelOp {
  const Operation* source = nullptr;
  Effect effect = Effect::kRead;
  std::int32_t operand = kAbsent;
  std::int32_t new_value = kAbsent;
  // The outcome is unknown: the operation may take effect at any instant after
  // its call, or never; it has no return.
  bool unknown = false;
};

// The register after `op` when it held `value`, or kRejected if `op` could not
// have returned what it did.
std::int32_t apply(const ModelOp& op, std::int32_t value) {
  switch (op.effect) {
    case Effect::kWrite:
      return op.operand;
    case Effect::kRead:
      return value == op.operand ? value : kRejected;
    case Effect::kSwap:
      return value == op.operand ? op.new_value : kRejected;
    case Effect::kCompareFails:
      return value != op.operand ? value : kRejected;
    case Effect::kMaybeSwap:
      return value == op.operand ? op.new_value : value;
  }
  return kRejected;
}

bool is_read(Effect effect) { return effect == Effect::kRead || effect == Effect::kCompareFails; }

// Whether the checker looks at `op` at all (see the header for why not).
bool is_relevant(const Operation& op) {
  if (!op.checked || op.outcome == Outcome::kFailed) return false;
  return !(op.outcome == Outcome::kUnknown && op.kind == OpKind::kGet);
}

bool is_read_only(const Operation& op) {
  return op.outcome == Outcome::kOk &&
         (op.kind == OpKind::kGet || (op.kind == OpKind::kCas && !op.cas_succeeded));
}

class ValueIds {
 public:
  explicit ValueIds(const std::vector<const Operation*>& ops) {
    for (const Operation* op : ops) {
      if (op->kind == OpKind::kGet && op->output.has_value()) observe(*op->output);
      if (op->kind == OpKind::kCas) observe(op->expected);
    }
  }
  std::int32_t id(std::string_view value) const {
    auto it = ids_.find(value);
    return it == ids_.end() ? kUnobserved : it->second;
  }

 private:
  void observe(std::string_view value) {
    ids_.try_emplace(value, static_cast<std::int32_t>(kFirstObserved + ids_.size()));
  }
  std::unordered_map<std::string_view, std::int32_t> ids_;
};

ModelOp to_model_op(const Operation& op, const ValueIds& values) {
  ModelOp m;
  m.source = &op;
  m.unknown = op.outcome == Outcome::kUnknown;
  switch (op.kind) {
    case OpKind::kPut:
      m.effect = Effect::kWrite;
      m.operand = values.id(op.value);
      break;
    case OpKind::kDelete:
      m.effect = Effect::kWrite;
      m.operand = kAbsent;
      break;
    case OpKind::kGet:
      m.effect = Effect::kRead;
      m.operand = op.output.has_value() ? values.id(*op.output) : kAbsent;
      break;
    case OpKind::kCas:
      m.operand = values.id(op.expected);
      m.new_value = values.id(op.value);
      m.effect = m.unknown          ? Effect::kMaybeSwap
                 : op.cas_succeeded ? Effect::kSwap
                                    : Effect::kCompareFails;
      break;
  }
  return m;
}

// The relevant operations of one key, numbered for the search: operations with
// a known outcome first, then the unknown ones, each group by call time. The
// numbering keeps the linearized set's words dense (see StateCache).
std::vector<ModelOp> model_ops(const std::vector<const Operation*>& ops) {
  std::vector<const Operation*> relevant;
  for (const Operation* op : ops) {
    if (is_relevant(*op)) relevant.push_back(op);
  }
  const ValueIds values(relevant);
  std::vector<ModelOp> out;
  out.reserve(relevant.size());
  for (const Operation* op : relevant) out.push_back(to_model_op(*op, values));
  std::stable_sort(out.begin(), out.end(), [](const ModelOp& a, const ModelOp& b) {
    return std::tie(a.unknown, a.source->call_time) < std::tie(b.unknown, b.source->call_time);
  });
  return out;
}

// --- the search state ----------------------------------------------------------

std::uint64_t mix64(std::uint64_t z) {  // SplitMix64's finalizer
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The set of linearized operations. Those of known outcome take the first
// words and the unknown ones the words after, so that the cache can treat the
// two parts differently. Kept up to date on every change, so that a cache
// lookup never scans or rehashes the whole set: a Zobrist hash of the known
// part, its leading all-ones words and where each part's non-zero words end.
class LinearizedSet {
 public:
  LinearizedSet(std::size_t known, std::size_t unknown)
      : known_(known),
        known_words_((known + 63) / 64),
        words_(known_words_ + (unknown + 63) / 64) {}

  bool contains(std::size_t op) const {
    const std::size_t bit = bit_of(op);
    return (words_[bit / 64] >> (bit % 64)) & 1U;
  }

  void add(std::size_t op) {
    KEEL_CHECK("an operation is linearized at most once", !contains(op));
    const std::size_t word = flip(op);
    if (op < known_) {
      while (full_words_ < known_words_ && words_[full_words_] == ~std::uint64_t{0}) ++full_words_;
      known_end_ = std::max(known_end_, word + 1);
    } else {
      unknown_end_ = std::max(unknown_end_, word + 1);
    }
  }

  void remove(std::size_t op) {
    KEEL_CHECK("only a linearized operation is undone", contains(op));
    const std::size_t word = flip(op);
    if (op < known_) {
      full_words_ = std::min(full_words_, word);
      while (known_end_ > 0 && words_[known_end_ - 1] == 0) --known_end_;
    } else {
      while (unknown_end_ > known_words_ && words_[unknown_end_ - 1] == 0) --unknown_end_;
    }
  }

  std::uint64_t known_hash() const { return known_hash_; }
  // The words of the known part between its leading all-ones words and its
  // trailing zero words; `full_words()` is how many all-ones words lead.
  std::size_t full_words() const { return full_words_; }
  std::span<const std::uint64_t> known_window() const {
    const std::size_t end = std::max(known_end_, full_words_);
    return std::span<const std::uint64_t>(words_).subspan(full_words_, end - full_words_);
  }
  // The unknown part, without its trailing zero words.
  std::span<const std::uint64_t> unknown_part() const {
    const std::size_t end = std::max(unknown_end_, known_words_);
    return std::span<const std::uint64_t>(words_).subspan(known_words_, end - known_words_);
  }

 private:
  std::size_t bit_of(std::size_t op) const {
    return op < known_ ? op : known_words_ * 64 + (op - known_);
  }
  // Returns the word changed.
  std::size_t flip(std::size_t op) {
    const std::size_t bit = bit_of(op);
    words_[bit / 64] ^= std::uint64_t{1} << (bit % 64);
    if (op < known_) known_hash_ ^= mix64(op);
    return bit / 64;
  }

  std::size_t known_;
  std::size_t known_words_;
  std::vector<std::uint64_t> words_;
  std::uint64_t known_hash_ = 0;
  std::size_t full_words_ = 0;   // leading all-ones words of the known part
  std::size_t known_end_ = 0;    // past the last non-zero word of the known part
  std::size_t unknown_end_ = 0;  // same for the unknown part (a word index in words_)
};

// Lowe's memo: the states already explored, all of which led nowhere.
//
// A state is subsumed by an explored one with the same value and the same
// operations of known outcome linearized whose unknown operations linearized
// are a subset of its own: an unknown operation never has to take effect, so
// whatever completes the history after the larger set completes it after the
// smaller one too. Without subsumption, each unknown operation that took
// effect somewhere splits every later state in two, for the rest of the key.
//
// Sets are stored compactly because a key can have ten thousand operations
// (157 words each) and a search millions of states: operations are numbered
// by call, so a known part is nearly always "everything before some point,
// plus a few"; an entry keeps the count of its leading all-ones words and the
// words from there to the last non-zero one, then its unknown part up to the
// last non-zero word, all in one arena. Entries with the same known part and
// value form a chain.
class StateCache {
 public:
  StateCache() : slots_(1024) {}

  // Adds the state unless an explored state subsumes it; false if one does.
  bool insert(const LinearizedSet& set, std::int32_t value) {
    const std::span<const std::uint64_t> window = set.known_window();
    const Window known{static_cast<std::uint32_t>(set.full_words()),
                       static_cast<std::uint32_t>(window.size())};
    const std::span<const std::uint64_t> unknown = set.unknown_part();
    const auto hash = static_cast<std::uint32_t>(mix64(set.known_hash() ^ mix64(value)) >> 32);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = hash & mask;
    for (; slots_[i].entry_plus_one != 0; i = (i + 1) & mask) {
      if (slots_[i].hash != hash) continue;
      const std::uint32_t head = slots_[i].entry_plus_one - 1;
      if (!same_key(entries_[head], window, known, value)) continue;
      for (std::uint32_t e = head; e != kNoEntry; e = entries_[e].next_with_same_key) {
        if (is_subset(entries_[e], unknown)) return false;
      }
      slots_[i].entry_plus_one = add_entry(window, known, unknown, value, head) + 1;
      return true;
    }
    slots_[i] = Slot{add_entry(window, known, unknown, value, kNoEntry) + 1, hash};
    if (++used_slots_ * 2 > slots_.size()) grow();
    return true;
  }

 private:
  static constexpr std::uint32_t kNoEntry = ~std::uint32_t{0};

  struct Window {
    std::uint32_t first;  // words before it are all ones
    std::uint32_t count;  // words after first + count are all zeros
  };
  struct Entry {
    std::uint64_t arena_offset;  // the known window, then the unknown words
    std::uint32_t first;
    std::uint32_t count;
    std::uint32_t unknown_count;
    std::int32_t value;
    std::uint32_t next_with_same_key;
  };
  struct Slot {
    std::uint32_t entry_plus_one = 0;  // 0: empty; else the newest entry of its key
    std::uint32_t hash = 0;
  };

  bool same_key(const Entry& entry, std::span<const std::uint64_t> window, Window known,
                std::int32_t value) const {
    return entry.value == value && entry.first == known.first && entry.count == known.count &&
           std::memcmp(arena_.data() + entry.arena_offset, window.data(),
                       window.size() * sizeof(std::uint64_t)) == 0;
  }

  bool is_subset(const Entry& entry, std::span<const std::uint64_t> unknown) const {
    if (entry.unknown_count > unknown.size()) return false;  // trimmed: its last word is set
    const std::uint64_t* stored = arena_.data() + entry.arena_offset + entry.count;
    for (std::size_t w = 0; w < entry.unknown_count; ++w) {
      if ((stored[w] & ~unknown[w]) != 0) return false;
    }
    return true;
  }

  std::uint32_t add_entry(std::span<const std::uint64_t> window, Window known,
                          std::span<const std::uint64_t> unknown, std::int32_t value,
                          std::uint32_t next) {
    KEEL_CHECK("the state cache holds fewer than 2^32 entries", entries_.size() < kNoEntry);
    entries_.push_back(Entry{arena_.size(), known.first, known.count,
                             static_cast<std::uint32_t>(unknown.size()), value, next});
    arena_.insert(arena_.end(), window.begin(), window.end());
    arena_.insert(arena_.end(), unknown.begin(), unknown.end());
    return static_cast<std::uint32_t>(entries_.size() - 1);
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.entry_plus_one == 0) continue;
      std::size_t i = slot.hash & mask;
      while (slots_[i].entry_plus_one != 0) i = (i + 1) & mask;
      slots_[i] = slot;
    }
  }

  std::vector<Entry> entries_;
  std::vector<Slot> slots_;  // open addressing, linear probing, at most half full
  std::size_t used_slots_ = 0;
  std::vector<std::uint64_t> arena_;
};

enum class Verdict : std::uint8_t { kLinearizable, kNotLinearizable, kBudgetExhausted };

struct SearchOutcome {
  Verdict verdict = Verdict::kLinearizable;
  std::uint64_t states = 0;
};

// The operations of unknown outcome of one key, in classes of interchangeable
// ones (same effect: put of the same value, delete, cas with the same expected
// and new values). Exchanging two members changes nothing but which one took
// effect, and the earlier-called one may take the later one's place, so only
// call order is tried: a class's next member is its earliest-called one not
// yet linearized. k unobserved unknown puts then cost k + 1 sets, not 2^k.
class UnknownClasses {
 public:
  explicit UnknownClasses(const std::vector<ModelOp>& ops) : class_of_(ops.size(), kNone) {
    std::map<std::tuple<Effect, std::int32_t, std::int32_t>, std::uint32_t> by_effect;
    for (std::size_t op = 0; op < ops.size(); ++op) {
      if (!ops[op].unknown) continue;
      const ModelOp& m = ops[op];
      auto [it, added] = by_effect.try_emplace(std::make_tuple(m.effect, m.operand, m.new_value),
                                               static_cast<std::uint32_t>(classes_.size()));
      if (added) {
        classes_.push_back(Class{});
        if (m.effect == Effect::kWrite) {
          writing_[m.operand].push_back(it->second);
          write_classes_.push_back(it->second);
        } else {
          cas_expecting_[m.operand].push_back(it->second);
          cas_swapping_to_[m.new_value].push_back(it->second);
        }
      }
      classes_[it->second].members.push_back(op);  // ops are numbered by call
      class_of_[op] = it->second;
    }
  }

  // The next member of `cls`, or nullopt if all are linearized.
  std::optional<std::size_t> next(std::uint32_t cls) const {
    const Class& c = classes_[cls];
    if (c.linearized == c.members.size()) return std::nullopt;
    return c.members[c.linearized];
  }
  void linearize(std::size_t op) {
    Class& c = classes_[class_of_[op]];
    KEEL_CHECK("unknown operations of a class are linearized in call order",
               c.linearized < c.members.size() && c.members[c.linearized] == op);
    ++c.linearized;
  }
  void undo(std::size_t op) {
    Class& c = classes_[class_of_[op]];
    KEEL_CHECK("unknown operations are undone in reverse order",
               c.linearized > 0 && c.members[c.linearized - 1] == op);
    --c.linearized;
  }

  const std::vector<std::uint32_t>& write_classes() const { return write_classes_; }
  const std::vector<std::uint32_t>& writing(std::int32_t value) const {
    return find(writing_, value);
  }
  const std::vector<std::uint32_t>& cas_expecting(std::int32_t value) const {
    return find(cas_expecting_, value);
  }
  const std::vector<std::uint32_t>& cas_swapping_to(std::int32_t value) const {
    return find(cas_swapping_to_, value);
  }

 private:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  using Index = std::unordered_map<std::int32_t, std::vector<std::uint32_t>>;

  struct Class {
    std::vector<std::size_t> members;  // by call
    std::size_t linearized = 0;        // a prefix of members
  };

  const std::vector<std::uint32_t>& find(const Index& index, std::int32_t value) const {
    auto it = index.find(value);
    return it == index.end() ? none_ : it->second;
  }

  std::vector<Class> classes_;
  std::vector<std::uint32_t> class_of_;  // per operation; kNone for known outcomes
  std::vector<std::uint32_t> write_classes_;
  Index writing_;          // kWrite classes by the value written
  Index cas_expecting_;    // kMaybeSwap classes by expected value
  Index cas_swapping_to_;  // kMaybeSwap classes by new value
  std::vector<std::uint32_t> none_;
};

// Wing & Gong's search with Lowe's memo over one key's operations.
//
// Operations of known outcome sit in a doubly linked list of call and return
// events in time order, over an array: node 0 is the head, node 1 the tail,
// operation i has its call at node 2 + 2i and its return at 3 + 2i. The
// operations that may go next (the candidates) are those whose calls precede
// the first return in the list; an unknown operation (it has no return) is a
// candidate once called before that return. Linearizing an operation lifts it
// out of the list; backtracking puts it back, in reverse order (dancing
// links), so no step copies the history. A state that leads nowhere is
// remembered in the StateCache and never explored twice. Once no operation of
// known outcome is left, the unknown ones left can all take effect after
// everything (or never): the history is linearizable.
//
// The order in which candidates are tried decides the cost, never the verdict:
//  1. A read (get, failed cas) that the register allows now goes first, as a
//     forced move: moving it to the front of any valid continuation keeps the
//     continuation valid (it changes nothing, and whatever must precede it
//     already does), so if what follows it fails, so does the state before
//     it, and no other candidate needs trying. Without this, a read tried
//     after a concurrent write made it impossible is retried under every order
//     of the other running writes.
//  2. Writes of known outcome, earliest return first: the one that must be in
//     place soonest is the likeliest to belong next. In call order instead, a
//     long-running write is placed early and every read of the older value
//     behind it is retried under the orders of the writes around it.
//  3. Unknown operations, in call order, and only those that give the register
//     a value some candidate needs (see wanted_values). Tried wherever allowed,
//     as the plain algorithm does, every dead end would be retried under each
//     subset of the pending unknown writes.
class KeySearch {
 public:
  explicit KeySearch(const std::vector<ModelOp>& ops)
      : ops_(ops),
        next_(2 * ops.size() + 2),
        prev_(2 * ops.size() + 2),
        call_rank_(ops.size()),
        return_rank_(ops.size()),
        unknown_(ops),
        linearized_(count_known(ops), ops.size() - count_known(ops)) {
    link_events();
    stack_.reserve(ops.size());
  }

  // One run per object.
  SearchOutcome run(std::uint64_t max_states) {
    std::size_t resume_at = 0;  // the next choice to try in the current state
    while (gather_candidates()) {
      // A state resumed after backtracking had no read to force.
      Attempt attempt = resume_at == 0 ? try_forced_read() : Attempt::kNothingToTry;
      if (attempt == Attempt::kNothingToTry) attempt = try_choices(resume_at);
      if (attempt == Attempt::kLinearized) {
        if (++states_ > max_states) return {Verdict::kBudgetExhausted, max_states};
        resume_at = 0;
        continue;
      }
      const std::optional<std::size_t> resumed = backtrack();
      if (!resumed) return {Verdict::kNotLinearizable, states_};
      resume_at = *resumed;
    }
    return {Verdict::kLinearizable, states_};
  }

 private:
  enum class Attempt : std::uint8_t { kLinearized, kDeadEnd, kNothingToTry };

  struct Linearized {
    std::int32_t op;
    std::int32_t value_before;
    std::uint32_t choice;  // its index among the choices of the state before it
    bool forced;
  };

  static constexpr std::int32_t kHead = 0;
  static constexpr std::int32_t kTail = 1;
  static std::int32_t call_node(std::size_t op) { return static_cast<std::int32_t>(2 + 2 * op); }
  static std::int32_t return_node(std::size_t op) { return static_cast<std::int32_t>(3 + 2 * op); }
  static bool is_call(std::int32_t node) { return node % 2 == 0; }
  static std::size_t op_of(std::int32_t node) { return static_cast<std::size_t>(node - 2) / 2; }

  // Operations are numbered known outcomes first (see model_ops).
  static std::size_t count_known(const std::vector<ModelOp>& ops) {
    return static_cast<std::size_t>(
        std::count_if(ops.begin(), ops.end(), [](const ModelOp& op) { return !op.unknown; }));
  }

  // Collects the candidates of known outcome; false when none is left.
  bool gather_candidates() {
    known_.clear();
    std::int32_t node = next_[kHead];
    for (; is_call(node); node = next_[node]) known_.push_back(op_of(node));
    if (node == kTail) return false;
    first_return_rank_ = return_rank_[op_of(node)];
    return true;
  }

  Attempt try_forced_read() {
    for (std::size_t op : known_) {
      if (!is_read(ops_[op].effect) || apply(ops_[op], value_) == kRejected) continue;
      return linearize(op, 0, /*forced=*/true) ? Attempt::kLinearized : Attempt::kDeadEnd;
    }
    return Attempt::kNothingToTry;
  }

  // Tries the choices of the current state from number `first` on: the known
  // writes by return, then the unknown operations by call. The choices depend
  // on the state only, so a resumed state sees the same ones.
  Attempt try_choices(std::size_t first) {
    writes_.clear();
    for (std::size_t op : known_) {
      if (!is_read(ops_[op].effect)) writes_.push_back(op);
    }
    std::sort(writes_.begin(), writes_.end(), [this](std::size_t a, std::size_t b) {
      return std::tie(ops_[a].source->return_time, a) < std::tie(ops_[b].source->return_time, b);
    });
    for (std::size_t i = first; i < writes_.size(); ++i) {
      if (apply(ops_[writes_[i]], value_) == kRejected) continue;
      if (linearize(writes_[i], i, /*forced=*/false)) return Attempt::kLinearized;
    }
    if (!wanted_values()) return Attempt::kDeadEnd;
    gather_unknown_choices();
    for (std::size_t i = std::max(first, writes_.size()) - writes_.size();
         i < unknown_choices_.size(); ++i) {
      if (linearize(unknown_choices_[i], writes_.size() + i, /*forced=*/false)) {
        return Attempt::kLinearized;
      }
    }
    return Attempt::kDeadEnd;
  }

  // The values an unknown operation may usefully give the register; false if
  // there are none. In a valid order in which as few unknown operations as
  // possible take effect, each that does is followed by one it enables: one
  // not so followed could move one step later (past a read it does not
  // enable) or drop out (before a write, which hides it; at the end), since it
  // never has to take effect. Such a chain of unknown operations (cas after the
  // first) ends at a candidate of known outcome that the register rejects now:
  // a read it allows would have been forced, and a write it allows could
  // simply go first. So the wanted values are what rejected candidates need,
  // and the expected values of unknown cas operations that would swap to a
  // wanted value. A rejected failed cas wants any other value.
  bool wanted_values() {
    wanted_.clear();
    wanted_any_other_ = false;
    for (std::size_t op : known_) {
      const ModelOp& reader = ops_[op];
      if (reader.effect == Effect::kWrite || apply(reader, value_) != kRejected) continue;
      if (reader.effect == Effect::kCompareFails) {
        wanted_any_other_ = true;
      } else if (!is_wanted(reader.operand)) {
        wanted_.push_back(reader.operand);
      }
    }
    if (wanted_any_other_) return true;
    for (std::size_t i = 0; i < wanted_.size(); ++i) {  // grows as it goes
      for (std::uint32_t cls : unknown_.cas_swapping_to(wanted_[i])) {
        const std::optional<std::size_t> cas = unknown_.next(cls);
        // One expecting the current value swaps now: a choice, not a want.
        const std::int32_t expected = cas ? ops_[*cas].operand : value_;
        if (expected != value_ && !is_wanted(expected)) wanted_.push_back(expected);
      }
    }
    return !wanted_.empty();
  }

  bool is_wanted(std::int32_t value) const {
    if (value == value_) return false;
    return wanted_any_other_ || std::find(wanted_.begin(), wanted_.end(), value) != wanted_.end();
  }

  // The next member of each class that is a candidate and gives a wanted
  // value, by call.
  void gather_unknown_choices() {
    unknown_choices_.clear();
    auto consider = [this](std::uint32_t cls) {
      const std::optional<std::size_t> op = unknown_.next(cls);
      if (op && call_rank_[*op] < first_return_rank_ && is_wanted(apply(ops_[*op], value_))) {
        unknown_choices_.push_back(*op);
      }
    };
    if (wanted_any_other_) {
      for (std::uint32_t cls : unknown_.write_classes()) consider(cls);
    } else {
      for (std::int32_t value : wanted_) {
        for (std::uint32_t cls : unknown_.writing(value)) consider(cls);
      }
    }
    for (std::uint32_t cls : unknown_.cas_expecting(value_)) consider(cls);
    std::sort(unknown_choices_.begin(), unknown_choices_.end());
  }

  // Linearizes `op` unless the state it leads to was explored already.
  bool linearize(std::size_t op, std::size_t choice, bool forced) {
    const std::int32_t after = apply(ops_[op], value_);
    linearized_.add(op);
    if (!cache_.insert(linearized_, after)) {
      linearized_.remove(op);
      return false;
    }
    stack_.push_back(
        {static_cast<std::int32_t>(op), value_, static_cast<std::uint32_t>(choice), forced});
    value_ = after;
    lift(op);
    return true;
  }

  // Undoes linearizations back to the latest state with a choice left, and
  // returns that choice's number; nullopt if no state is left. Forced reads
  // are undone together with the state they were forced in.
  std::optional<std::size_t> backtrack() {
    while (!stack_.empty()) {
      const Linearized top = stack_.back();
      stack_.pop_back();
      linearized_.remove(static_cast<std::size_t>(top.op));
      value_ = top.value_before;
      unlift(static_cast<std::size_t>(top.op));
      if (!top.forced) return std::size_t{top.choice} + 1;
    }
    return std::nullopt;
  }

  // Events by time, calls before returns at equal times (so that touching
  // intervals count as concurrent).
  void link_events() {
    struct Event {
      std::int64_t time;
      bool is_return;
      std::size_t op;
    };
    std::vector<Event> events;
    events.reserve(2 * ops_.size());
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      events.push_back({ops_[i].source->call_time, false, i});
      if (!ops_[i].unknown) events.push_back({ops_[i].source->return_time, true, i});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return std::tie(a.time, a.is_return, a.op) < std::tie(b.time, b.is_return, b.op);
    });
    std::int32_t last = kHead;
    for (std::size_t rank = 0; rank < events.size(); ++rank) {
      const Event& event = events[rank];
      (event.is_return ? return_rank_ : call_rank_)[event.op] = rank;
      if (ops_[event.op].unknown) continue;
      const std::int32_t node = event.is_return ? return_node(event.op) : call_node(event.op);
      next_[last] = node;
      prev_[node] = last;
      last = node;
    }
    next_[last] = kTail;
    prev_[kTail] = last;
    next_[kTail] = kTail;
  }

  void lift(std::size_t op) {
    if (ops_[op].unknown) {
      unknown_.linearize(op);
      return;
    }
    const std::int32_t call = call_node(op);
    next_[prev_[call]] = next_[call];
    prev_[next_[call]] = prev_[call];
    const std::int32_t ret = return_node(op);
    next_[prev_[ret]] = next_[ret];
    prev_[next_[ret]] = prev_[ret];
  }

  void unlift(std::size_t op) {
    if (ops_[op].unknown) {
      unknown_.undo(op);
      return;
    }
    const std::int32_t ret = return_node(op);
    next_[prev_[ret]] = ret;
    prev_[next_[ret]] = ret;
    const std::int32_t call = call_node(op);
    next_[prev_[call]] = call;
    prev_[next_[call]] = call;
  }

  const std::vector<ModelOp>& ops_;
  std::vector<std::int32_t> next_;
  std::vector<std::int32_t> prev_;
  std::vector<std::size_t> call_rank_;    // position of the call among all events
  std::vector<std::size_t> return_rank_;  // same for the return (known outcomes)
  UnknownClasses unknown_;
  LinearizedSet linearized_;
  StateCache cache_;
  std::vector<Linearized> stack_;
  std::int32_t value_ = kAbsent;
  std::uint64_t states_ = 0;
  // Scratch for the current state, reused by every step.
  std::size_t first_return_rank_ = 0;
  std::vector<std::size_t> known_;            // candidates of known outcome, by call
  std::vector<std::size_t> writes_;           // the writes among them, by return
  std::vector<std::size_t> unknown_choices_;  // unknown candidates worth trying, by call
  std::vector<std::int32_t> wanted_;
  bool wanted_any_other_ = false;
};

SearchOutcome search_key(const std::vector<const Operation*>& ops, std::uint64_t max_states) {
  const std::vector<ModelOp> model = model_ops(ops);
  KeySearch search(model);
  return search.run(max_states);
}

// --- explanations ----------------------------------------------------------------

// Bounds the searches an explanation may run besides the state budget: the
// shortest prefix takes about log2(events) of them, dropping reads the rest.
constexpr std::size_t kMaxExplanationSearches = 256;
// Longer failing histories are shown around the operation that completes the
// violation; the whole of it is in CheckResult::failing_history.
constexpr std::size_t kMaxOperationsListed = 40;
constexpr std::size_t kOperationsListedBeforeFailure = 20;

// A key's history as a sequence of call and return events, cut at any point.
class KeyTimeline {
 public:
  explicit KeyTimeline(const std::vector<const Operation*>& ops) {
    for (const Operation* op : ops) {
      if (is_relevant(*op)) ops_.push_back(op);
    }
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      events_.push_back({ops_[i]->call_time, false, i});
      if (ops_[i]->outcome == Outcome::kOk) events_.push_back({ops_[i]->return_time, true, i});
    }
    std::sort(events_.begin(), events_.end(), [](const Event& a, const Event& b) {
      return std::tie(a.time, a.is_return, a.op) < std::tie(b.time, b.is_return, b.op);
    });
  }

  std::size_t operation_count() const { return ops_.size(); }
  std::size_t event_count() const { return events_.size(); }
  // The first `event_count` events without the calls after the last return:
  // those operations can take effect after everything else, so they cannot be
  // what makes a prefix fail.
  std::size_t through_last_return(std::size_t event_count) const {
    while (event_count > 0 && !events_[event_count - 1].is_return) --event_count;
    return event_count;
  }
  const Operation& operation(std::size_t i) const { return *ops_[i]; }
  // The operation of the last event among the first `event_count`.
  std::size_t last_operation(std::size_t event_count) const { return events_[event_count - 1].op; }

  // What the history was after its first `event_count` events: operations not
  // yet called are left out, and those still running have an unknown outcome
  // (or, for reads, are left out). Linearizability is closed under prefixes,
  // so if a prefix fails, the whole history does.
  std::vector<Operation> prefix(std::size_t event_count, const std::vector<bool>& removed) const {
    std::vector<bool> called(ops_.size(), false);
    std::vector<bool> returned(ops_.size(), false);
    for (std::size_t e = 0; e < event_count; ++e) {
      (events_[e].is_return ? returned : called)[events_[e].op] = true;
    }
    std::vector<Operation> out;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (!called[i] || removed[i]) continue;
      Operation op = *ops_[i];
      if (!returned[i] && op.outcome == Outcome::kOk) {
        if (op.kind == OpKind::kGet) continue;
        op.outcome = Outcome::kUnknown;
        op.output.reset();
        op.cas_succeeded = false;
      }
      out.push_back(std::move(op));
    }
    return out;
  }

  // Read-only operations completed within the first `event_count` events.
  std::vector<std::size_t> completed_reads(std::size_t event_count) const {
    std::vector<std::size_t> out;
    for (std::size_t e = 0; e < event_count; ++e) {
      if (events_[e].is_return && is_read_only(*ops_[events_[e].op])) out.push_back(events_[e].op);
    }
    return out;
  }

 private:
  struct Event {
    std::int64_t time;
    bool is_return;
    std::size_t op;
  };
  std::vector<const Operation*> ops_;
  std::vector<Event> events_;
};

// Runs explanation searches within their own budget.
class FailureProbe {
 public:
  explicit FailureProbe(std::uint64_t max_states) : states_left_(max_states) {}

  bool exhausted() const { return states_left_ == 0 || searches_ >= kMaxExplanationSearches; }

  // True only if `ops` is proven not linearizable.
  bool fails(const std::vector<Operation>& ops) {
    if (exhausted()) return false;
    ++searches_;
    std::vector<const Operation*> pointers;
    pointers.reserve(ops.size());
    for (const Operation& op : ops) pointers.push_back(&op);
    const SearchOutcome outcome = search_key(pointers, states_left_);
    states_left_ -= std::min(states_left_, outcome.states);
    if (outcome.verdict == Verdict::kBudgetExhausted) states_left_ = 0;
    return outcome.verdict == Verdict::kNotLinearizable;
  }

 private:
  std::uint64_t states_left_;
  std::size_t searches_ = 0;
};

// The shortest failing prefix: the smallest event count whose prefix is proven
// to fail (the whole history is known to, hence so is everything up to its
// last return). It ends with a return: a prefix ending with a call fails only
// if the prefix before that call does.
std::size_t shortest_failing_prefix(const KeyTimeline& timeline, FailureProbe& probe) {
  const std::vector<bool> none(timeline.operation_count(), false);
  std::size_t passes = 0;  // the empty prefix is linearizable
  std::size_t fails = timeline.through_last_return(timeline.event_count());
  while (fails - passes > 1 && !probe.exhausted()) {
    const std::size_t middle = passes + (fails - passes) / 2;
    if (probe.fails(timeline.prefix(middle, none))) {
      fails = timeline.through_last_return(middle);
    } else {
      passes = middle;
    }
  }
  return fails;
}

// Drops reads the violation does not need, in halving chunks (delta debugging).
// Only reads: dropping a read keeps a linearizable history linearizable, so
// what remains failing shows a real violation; dropping a write would not.
std::vector<bool> drop_unneeded_reads(const KeyTimeline& timeline, std::size_t event_count,
                                      std::size_t keep, FailureProbe& probe) {
  std::vector<bool> removed(timeline.operation_count(), false);
  std::vector<std::size_t> candidates = timeline.completed_reads(event_count);
  std::erase(candidates, keep);
  for (std::size_t chunk = candidates.size(); chunk >= 1 && !candidates.empty(); chunk /= 2) {
    for (std::size_t start = 0; start < candidates.size() && !probe.exhausted(); start += chunk) {
      const std::size_t end = std::min(candidates.size(), start + chunk);
      for (std::size_t i = start; i < end; ++i) removed[candidates[i]] = true;
      if (!probe.fails(timeline.prefix(event_count, removed))) {
        for (std::size_t i = start; i < end; ++i) removed[candidates[i]] = false;
      }
    }
    std::erase_if(candidates, [&](std::size_t op) { return removed[op]; });
    if (probe.exhausted()) break;
  }
  return removed;
}

void append_operations(std::string& out, std::vector<const Operation*> ops) {
  std::stable_sort(ops.begin(), ops.end(), [](const Operation* a, const Operation* b) {
    return a->call_time < b->call_time;
  });
  for (const Operation* op : ops) out += "  " + to_text(*op) + "\n";
}

std::string describe_violation(const std::string& key, std::size_t key_operations,
                               const Operation& last, const std::vector<Operation>& failing) {
  std::string out = "key " + quoted(key) + " is not linearizable: no order of its " +
                    std::to_string(key_operations) +
                    " operations that respects real time explains every output.\n"
                    "It fails as soon as this operation returns:\n  " +
                    to_text(last) + "\n";
  std::vector<const Operation*> shown;
  std::size_t omitted = 0;
  if (failing.size() <= kMaxOperationsListed) {
    for (const Operation& op : failing) shown.push_back(&op);
    out += "These " + std::to_string(failing.size()) +
           " operations alone are not linearizable (operations still running then have an "
           "unknown outcome; reads not needed are left out):\n";
  } else {
    // Those running when `last` did, and the last few to return before it.
    std::vector<const Operation*> before;
    for (const Operation& op : failing) {
      const bool concurrent = op.call_time <= last.return_time &&
                              (op.outcome != Outcome::kOk || op.return_time >= last.call_time);
      if (concurrent) {
        shown.push_back(&op);
      } else {
        before.push_back(&op);
      }
    }
    std::stable_sort(before.begin(), before.end(), [](const Operation* a, const Operation* b) {
      return a->return_time > b->return_time;
    });
    const std::size_t take = std::min(before.size(), kOperationsListedBeforeFailure);
    shown.insert(shown.end(), before.begin(), before.begin() + static_cast<std::ptrdiff_t>(take));
    omitted = failing.size() - shown.size();
    out += "The failing prefix has " + std::to_string(failing.size()) +
           " operations (CheckResult::failing_history); those running at the same time and "
           "the last " +
           std::to_string(take) + " to return before it:\n";
  }
  append_operations(out, shown);
  if (omitted > 0) out += "  ... and " + std::to_string(omitted) + " earlier operations\n";
  return out;
}

void explain_violation(const std::string& key, const std::vector<const Operation*>& ops,
                       const CheckOptions& options, CheckResult& result) {
  const KeyTimeline timeline(ops);
  FailureProbe probe(options.explain ? options.max_explanation_states : 0);
  const std::size_t event_count = shortest_failing_prefix(timeline, probe);
  const std::size_t last = timeline.last_operation(event_count);
  const std::vector<bool> removed = drop_unneeded_reads(timeline, event_count, last, probe);
  for (Operation& op : timeline.prefix(event_count, removed)) {
    result.failing_history.record(std::move(op));
  }
  result.explanation = describe_violation(key, timeline.operation_count(), timeline.operation(last),
                                          result.failing_history.operations());
}

void explain_exhaustion(const std::string& key, const std::vector<const Operation*>& ops,
                        std::size_t keys_not_checked, const CheckOptions& options,
                        CheckResult& result) {
  const std::vector<ModelOp> model = model_ops(ops);
  const auto unknown =
      std::count_if(model.begin(), model.end(), [](const ModelOp& op) { return op.unknown; });
  result.explanation = "the search of key " + quoted(key) + " (" + std::to_string(model.size()) +
                       " operations, " + std::to_string(unknown) +
                       " of unknown outcome) reached the bound of " +
                       std::to_string(options.max_states_explored) +
                       " states (CheckOptions::max_states_explored): linearizability is unknown; " +
                       std::to_string(keys_not_checked) + " larger keys were not checked.\n";
}

struct KeyOperations {
  std::string key;
  std::vector<const Operation*> ops;
};

// Keys smallest first, so that a cheap violation is found before a hard key
// spends the budget.
std::vector<KeyOperations> partition_by_key(const History& history) {
  std::map<std::string_view, std::vector<const Operation*>> by_key;
  for (const Operation& op : history.operations()) {
    if (is_relevant(op)) by_key[op.key].push_back(&op);
  }
  std::vector<KeyOperations> out;
  out.reserve(by_key.size());
  for (auto& [key, ops] : by_key) out.push_back({std::string(key), std::move(ops)});
  std::stable_sort(out.begin(), out.end(), [](const KeyOperations& a, const KeyOperations& b) {
    return a.ops.size() < b.ops.size();
  });
  return out;
}

}  // namespace

CheckResult check_linearizable(const History& history, const CheckOptions& options) {
  CheckResult result;
  const std::vector<KeyOperations> keys = partition_by_key(history);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    const KeyOperations& key = keys[k];
    const SearchOutcome outcome =
        search_key(key.ops, options.max_states_explored - result.states_explored);
    result.states_explored += outcome.states;
    if (outcome.verdict == Verdict::kLinearizable) continue;
    result.key_that_failed = key.key;
    if (outcome.verdict == Verdict::kBudgetExhausted) {
      result.budget_exhausted = true;
      explain_exhaustion(key.key, key.ops, keys.size() - k - 1, options, result);
    } else {
      explain_violation(key.key, key.ops, options, result);
    }
    return result;
  }
  KEEL_CHECK("the search stays within its state budget",
             result.states_explored <= options.max_states_explored);
  std::size_t checked = 0;
  for (const KeyOperations& key : keys) checked += key.ops.size();
  result.linearizable = true;
  result.explanation = "linearizable: " + std::to_string(checked) + " of " +
                       std::to_string(history.size()) + " operations checked, on " +
                       std::to_string(keys.size()) + " keys\n";
  return result;
}

}  // namespace keel::sim
