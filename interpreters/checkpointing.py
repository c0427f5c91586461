"""Reverse sweeps over a loop: a tape of every iteration, or at most k carries and recomputation.

A loop's iteration i maps carry c_i to c_{i+1}; the loop stops after n iterations, a number
known only when it stops (a `while`). Reverse mode pulls a cotangent back through the
iterations n-1, ..., 0, and iteration i's pullback needs what iteration i computed from c_i.
A `LoopRecord` runs the iterations forward and then that reverse sweep, keeping either

- a tape (`checkpoints=None`): the residuals of every iteration, n of them; or
- at most k carries (`checkpoints=k`): the other carries are recomputed from the nearest
  stored one, so memory is O(k * carry) instead of O(n * residuals).

The record holds values and calls functions it is given; it never looks inside either, and
where it stores and what it recomputes depends only on k and the trip count, never on values.
So the same code serves eager loops, generated (jitted) loops and traced ones. How a caller
uses it (a `while` of `cond` and `body`):

    record = LoopRecord(step, linearize, checkpoints=k)
    while cond(carry):
        carry = record.step(carry)               # runs iteration record.trip_count
    ...
    ct_init = record.reverse(ct_final, pullback)  # may be called again, for another cotangent

with
    step(i, carry) -> next carry                      the plain body (only with checkpoints)
    linearize(i, carry) -> (next carry, residuals)    the body, keeping what its pullback needs
    pullback(i, residuals, ct) -> ct of the carry i   the transposed body

Per-iteration outputs (a scan's ys) are the caller's: in the forward sweep `step` (with
checkpoints) or `linearize` (tape) runs once per i, in increasing order; in the reverse sweep
`step` recomputes (i repeats, in increasing runs) and `linearize` runs once per i, decreasing.
Cotangents of values the body closes over can travel inside `ct` (it is opaque here).
The record keeps carries by reference: `step` must return new values rather than overwrite
its input, or the caller passes `snapshot` (a copy) to be applied to each carry it keeps.

# The schedule, and what it guarantees

Terms: n iterations; the reverse sweep needs c_{n-1}, ..., c_0 (the loop's result c_n is not
needed); "recomputed steps" are the calls of `step` during a reverse sweep. Besides those,
each reverse sweep calls `linearize` once per iteration (the tape calls it in the forward
sweep instead), and the forward sweep calls `step` n times.

A stretch of L iterations whose first carry is stored, reversed with s slots for carries (that
one included), needs at least T(L, s) = r*L - beta(s+1, r-1) recomputed steps, where
beta(s, r) = C(s+r, s) and r is the least with beta(s, r) >= L; binomial checkpointing
reaches it, running each iteration at most r more times (Griewank 1992; Griewank and Walther,
"Algorithm 799: revolve", ACM TOMS 26, 2000). After the forward sweep the stored carries sit at
p_0 = 0 < p_1 < ... < p_{m-1} (m <= k); the reverse sweep takes the segments between them from
the last one back, segment j with k - j slots (the slots of the later, finished segments are
free again), each by binomial checkpointing: sum_j T(p_{j+1} - p_j, k - j) recomputed steps.
The best placement for a known n makes that R*(n, k): with the level q(n), the least q with
beta(k, q+1) - 1 >= n, it is the placement whose segment j has between beta(k-j, q-1) and
beta(k-j, q) iterations (T is convex in L; the slopes are the repetition numbers).

When n is known in advance (`length=`, a scan) the forward sweep stores at such a placement:
exactly R*(n, k) recomputed steps.

When it is not (a while loop), the forward sweep has to choose as it goes, and may only store
the current carry or drop a stored one. This module's online schedule, at iteration t:

1. level q = q(t+1), the least repetition number that could still reverse t+1 iterations;
2. targets: the positions of the full placement of level q, sum_{i<j} beta(k-i, q) for j < k;
   a carry stored at a target is kept while the level lasts;
3. c_t is stored when t is a target, or when the last segment would outgrow beta(s, q)
   (s its slots);
4. if all k slots are full, one carry is dropped: the latest one not at a target whose removal
   keeps the merged segment within beta(s, q) and every later segment (one slot richer) at
   least beta(s+1, q-1) long; failing that, of those not at a target and whose merged
   segment stays within beta(s, q), the one whose removal leaves the cheapest reverse sweep
   for t+1 iterations (the tests never met a case with no such carry; there, the cheapest).

What it guarantees (each checked by tests/test_checkpointing.py, unless marked measured):
- at most k carries are held at any moment, in the forward and in the reverse sweep;
- every iteration's pullback runs exactly once per reverse sweep, in reverse order, with c_i;
- n <= k: no recomputation;
- n <= C(k+2, 2): exactly R*(n, k) recomputed steps, the offline optimum (n - k below
  C(k+2, 2)). No online schedule can do that for every n up to C(k+2, 2) + 1 (k >= 2; the
  tests search all schedules for k <= 5, and a search outside them did for k = 6): a segment
  started at the current step is shorter than the optimum's lower bound from level 2 on;
- in the first reverse sweep every iteration is recomputed at most q(n) times, the least any
  schedule needs, even one that knows n (every segment stays within its level's cap, by
  steps 3 and 4);
- beyond C(k+2, 2): close to the optimum, not at it. Worst excess over R*(n, k) for n <= 2000:
  18 % at k = 2, 8 % at k = 4, 1.8 % at k = 10, 0.3 % at k = 25, 0.08 % at k = 50 (the worst
  cases are just after a level starts, where R* is small); measured at k = 100: within
  0.02 % for every n <= 100,000, and exactly R* at n = 100,000 (the benchmark's case).

Stumm and Walther ("New algorithms for optimal online checkpointing", SIAM J. Sci. Comput. 32,
2010) work in revolve's setting, where the forward sweep tapes its last step, so that its last
carry is never needed; their online schedules (Online_r2 and Online_r3 in the revolve.cpp of
Griewank, Walther and Stumm) cover trip counts up to about C(k+2, 2) and C(k+3, 3), repetition
numbers 2 and 3 in that setting, and hand over to a heuristic beyond. Here the forward sweep
runs only the plain body (a while loop learns that it stops after its last step, not before),
and that costs a level: C(k+2, 2) is as far as an online schedule can be optimal, and this one
is optimal all the way there. Its targets follow the same idea (the binomial placement of the
current level); the rule that picks what to drop is this module's.

A reverse sweep drops the forward sweep's carries as it finishes their segments, so memory
never exceeds k; it keeps c_0 (the loop's input, held by the caller anyway), and a second
reverse sweep recomputes from it by binomial checkpointing over [0, n) with k slots, T(n, k)
steps. A tape is kept whole until the record goes.
"""
import bisect
import functools
import math
import operator
import threading


def binomial_capacity(slots, repetitions):
    """beta(s, r) = C(s+r, s): the most iterations s slots reverse with r recomputations each."""
    if repetitions < 0:
        return 0
    return math.comb(slots + repetitions, slots)


@functools.lru_cache(maxsize=4096)
def repetitions_needed(length, slots):
    """The least r with beta(slots, r) >= length: each iteration then runs at most r more times."""
    if length <= 1:
        return 0
    if slots == 1:
        return length - 1
    # beta grows at least quadratically in r for slots >= 2: a doubling search, then bisection
    high = 1
    while binomial_capacity(slots, high) < length:
        high *= 2
    low = high // 2  # beta(slots, low) < length, or low == 0
    while high - low > 1:
        middle = (low + high) // 2
        if binomial_capacity(slots, middle) < length:
            low = middle
        else:
            high = middle
    return high


def reversal_cost(length, slots):
    """T(L, s): the fewest recomputed steps that reverse `length` iterations whose first carry
    is stored, with `slots` slots for carries (that one included)."""
    if length <= 1:
        return 0
    r = repetitions_needed(length, slots)
    return r * length - binomial_capacity(slots + 1, r - 1)


def placement_cost(positions, trip_count, slots):
    """Recomputed steps of the reverse sweep from carries stored at `positions` (0 first)."""
    if not positions:  # a loop that never ran
        return 0
    ends = list(positions[1:]) + [trip_count]
    return sum(reversal_cost(end - start, slots - j)
               for j, (start, end) in enumerate(zip(positions, ends, strict=True)))


def level_of(trip_count, slots):
    """q(n): the least q with beta(slots, q+1) - 1 >= n, the least repetition number any
    placement of `slots` carries needs for n iterations (0 for n <= slots)."""
    return max(repetitions_needed(trip_count + 1, slots) - 1, 0)


def optimal_cost(trip_count, slots):
    """R*(n, k): the fewest recomputed steps of any reverse sweep of n iterations from k slots
    filled by a forward sweep that knew n. The increments of each segment's cost are its
    repetition numbers, so the cheapest placement uses all increments of cost below q(n)."""
    q = level_of(trip_count, slots)
    below = binomial_capacity(slots, q) - 1  # iterations placed at repetition numbers < q
    cost_below = sum(r * (binomial_capacity(slots, r + 1) - binomial_capacity(slots, r)) for r in range(q))
    return cost_below + q * (trip_count - below)


def optimal_placement(trip_count, slots):
    """Positions of the carries a forward sweep of `trip_count` iterations stores, for R*(n, k):
    every segment at its level's lower bound, the rest filled in from the left to the caps."""
    if trip_count == 0:
        return []
    q = level_of(trip_count, slots)
    segments = min(trip_count, slots)
    lengths = [max(binomial_capacity(slots - j, q - 1), 1) for j in range(segments)]
    spare = trip_count - sum(lengths)
    for j in range(segments):
        grow = min(spare, binomial_capacity(slots - j, q) - lengths[j])
        lengths[j] += grow
        spare -= grow
    positions = [0]
    for length in lengths[:-1]:
        positions.append(positions[-1] + length)
    return positions


def split_point(length, slots):
    """Where binomial checkpointing stores the next carry in a stretch of `length` iterations
    with `slots` slots: m iterations in, so that the left part (slots kept) has repetition
    number at most r-1 and the right part (one slot fewer) at most r. With one slot, the
    right part is the last iteration alone, reached without storing."""
    r = repetitions_needed(length, slots)
    return min(binomial_capacity(slots, r - 1), length - binomial_capacity(slots - 1, r - 1))


# -------------------- where the forward sweep stores --------------------

class _KnownLengthPlacement:
    """The offline optimum, for a trip count announced in advance."""

    def __init__(self, slots, length):
        self.length = length
        self.positions = []
        self._planned = optimal_placement(length, slots)
        self.next_decision = self._planned[0] if self._planned else length

    def decide(self, t):
        """Store c_t: t is a planned position, and a slot is free (see _OnlinePlacement.decide)."""
        appended = len(self.positions)
        self.positions.append(t)
        index = appended + 1
        self.next_decision = self._planned[index] if index < len(self._planned) else self.length
        return appended


class _OnlinePlacement:
    """The online schedule of the module docstring, steps 1 to 4."""

    def __init__(self, slots):
        self.slots = slots
        self.positions = []
        self.next_decision = 0
        self._level_ends = 0  # the level is q(t+1) for t < _level_ends
        # For each segment but the last (which still grows), what dropping a carry changes:
        # _gains[j] = T(L_j, s_j) - T(L_j, s_j + 1), saved when segment j gains a slot, and
        # _merges[j] = T(L_{j-1} + L_j, s_{j-1}) - T(L_{j-1}, s_{j-1}) - T(L_j, s_j) (j >= 1).
        # A decision changes only the segments from the dropped carry on: the rest is kept,
        # and what changed is computed again when _cheapest_to_drop next needs it.
        self._gains = []
        self._merges = []

    def decide(self, t):
        """At iteration t (== next_decision): store c_t or not. Returns None when c_t is not
        stored; else the index of the stored carry dropped to make room for it, or the number
        of stored carries when a slot was free. c_t goes last."""
        if t >= self._level_ends:
            self._enter_level(t)
        decision = None
        if t == 0 or t == self._next_target or t - self.positions[-1] >= self._last_cap():
            decision = self._make_room(t)
            self._store(t, decision)
            if self._next_target <= t:
                self._next_target = self._target_after(t)
        if self.slots == 1:  # the one slot holds c_0 for good
            self.next_decision = math.inf
        else:
            self.next_decision = min(self._level_ends, self._next_target,
                                     self.positions[-1] + self._last_cap())
        return decision

    def _last_cap(self):
        """The most iterations the last segment may hold at this level."""
        return self._caps[self.slots - len(self.positions) + 1]

    def _enter_level(self, t):
        q = level_of(t + 1, self.slots)
        self._level_ends = binomial_capacity(self.slots, q + 1) - 1
        # caps[s] = beta(s, q) and floors[s] = beta(s, q-1), for s slots (0..k+1)
        self._caps = [binomial_capacity(s, q) for s in range(self.slots + 2)]
        self._floors = [binomial_capacity(s, q - 1) for s in range(self.slots + 2)]
        self._targets = [0]
        for j in range(self.slots - 1):
            self._targets.append(self._targets[-1] + self._caps[self.slots - j])
        self._target_set = frozenset(self._targets)
        self._next_target = self._target_after(t - 1)

    def _target_after(self, t):
        index = bisect.bisect_right(self._targets, t)
        return self._targets[index] if index < len(self._targets) else math.inf

    def _make_room(self, t):
        """The index of the carry to drop so that c_t fits (len(positions) when a slot is free)."""
        if len(self.positions) < self.slots:
            return len(self.positions)
        return self._latest_within_bounds(t)

    def _store(self, t, drop):
        positions = self.positions
        if drop < len(positions):
            del positions[drop]
            first_changed = max(drop - 1, 0)  # the merged segment
        else:
            first_changed = max(len(positions) - 1, 0)  # the last segment, which stops growing
        positions.append(t)
        del self._gains[first_changed:]
        del self._merges[first_changed:]

    def _update_segment_changes(self):
        positions, slots = self.positions, self.slots
        for j in range(len(self._gains), len(positions) - 1):
            length, s = positions[j + 1] - positions[j], slots - j
            self._gains.append(reversal_cost(length, s) - reversal_cost(length, s + 1))
            self._merges.append(self._merge_change(positions[j] - positions[j - 1], length, s) if j else 0)

    @staticmethod
    def _merge_change(before, length, slots):
        """What merging a segment of `length` (with `slots`) into the one before it costs."""
        return (reversal_cost(before + length, slots + 1)
                - reversal_cost(before, slots + 1) - reversal_cost(length, slots))

    def _latest_within_bounds(self, t):
        positions, slots, targets = self.positions, self.slots, self._target_set
        end = t
        for i in range(len(positions) - 1, 0, -1):
            length = end - positions[i]
            if positions[i] not in targets:
                merged = positions[i] - positions[i - 1] + length
                if merged <= self._caps[slots - i + 1]:
                    return i
            # dropping a carry further left gives segment i one more slot: its floor rises
            if length < self._floors[slots - i + 1]:
                break
            end = positions[i]
        return self._cheapest_to_drop(t)

    def _cheapest_to_drop(self, t):
        """The carry not at a target whose removal leaves the cheapest reverse sweep for t+1
        iterations (the merge costs, every later segment gains a slot), among those whose
        merge stays within its cap if there are any; ties go to the earlier carry."""
        self._update_segment_changes()
        positions, slots, targets, caps = self.positions, self.slots, self._target_set, self._caps
        last = len(positions) - 1
        growing = t - positions[last]
        growing_gain = reversal_cost(growing, slots - last) - reversal_cost(growing, slots - last + 1)
        # a merge past its level's cap would have an iteration recomputed more than q(n) times
        best_index, best_key = last, (True, math.inf)  # (past the cap, change of cost)
        gain_after = 0  # the saving of the segments after i, each with one more slot
        for i in range(last, 0, -1):
            if i < last:
                gain_after += self._gains[i + 1] if i + 1 < last else growing_gain
            if positions[i] in targets:
                continue
            if i < last:
                merged = positions[i + 1] - positions[i - 1]
                change = self._merges[i] - gain_after
            else:
                merged = t - positions[i - 1]
                change = self._merge_change(positions[i] - positions[i - 1], growing, slots - i)
            key = (merged > caps[slots - i + 1], change)
            if key <= best_key:
                best_index, best_key = i, key
        return best_index


# -------------------- the record --------------------

def _as_count(value, name, expected):
    """An int from an int-like value (a NumPy integer too), bools refused."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}, got {value!r} of type {type(value).__name__}") from None


class LoopRecord:
    """A loop's forward sweep, kept for its reverse sweeps (see the module docstring)."""

    def __init__(self, step, linearize, checkpoints=None, *, length=None, snapshot=None):
        if not callable(linearize):
            raise TypeError(f"LoopRecord: linearize must be callable, got {type(linearize).__name__}")
        if checkpoints is not None:
            checkpoints = _as_count(checkpoints, "checkpoints", "None (a tape) or a positive int")
            if checkpoints < 1:
                raise ValueError(f"checkpoints must be at least 1 (the loop's first carry), "
                                 f"got {checkpoints}")
            if not callable(step):
                raise TypeError(f"LoopRecord: with checkpoints, step must be callable, "
                                f"got {type(step).__name__}")
        if length is not None:
            length = _as_count(length, "length", "None or a non-negative int")
            if length < 0:
                raise ValueError(f"length must be None or a non-negative int, got {length}")
        if snapshot is not None and not callable(snapshot):
            raise TypeError(f"snapshot must be None or callable, got {type(snapshot).__name__}")
        self.checkpoints = checkpoints
        self.length = length
        self.trip_count = 0
        self.recomputed_steps = 0  # calls of step in the reverse sweeps so far
        self.peak_stored = 0
        self._step, self._linearize = step, linearize
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._reversed = False
        if checkpoints is None:
            self._tape = []
        else:
            self._tape = None
            self._placement = (_OnlinePlacement(checkpoints) if length is None
                               else _KnownLengthPlacement(checkpoints, length))
            self._carries = []   # parallel to self._placement.positions
            self._recomputing = []  # carries stored during a reverse sweep, beyond those

    @property
    def stored(self):
        """How many values the record holds now: carries, or the tape's residuals."""
        if self._tape is not None:
            return len(self._tape)
        return len(self._carries) + len(self._recomputing)

    @property
    def checkpoint_positions(self):
        """The iterations whose input carries the record holds now (a tape: all of them)."""
        if self._tape is not None:
            return list(range(len(self._tape)))
        return list(self._placement.positions)

    def step(self, carry):
        """Run iteration `trip_count` on `carry` (its input) and return its output."""
        i = self.trip_count
        if self._reversed:
            raise ValueError("LoopRecord.step: this loop's record has been reversed; "
                             "a reverse sweep ends its forward sweep")
        if self.length is not None and i >= self.length:
            raise ValueError(f"LoopRecord.step: the loop was announced with length={self.length} "
                             f"and is running iteration {i}")
        if self._tape is not None:
            carry, residuals = self._linearize(i, carry)
            self._tape.append(residuals)
            self.peak_stored = len(self._tape)
        else:
            placement = self._placement
            if i == placement.next_decision:
                dropped = placement.decide(i)
                if dropped is not None:
                    if dropped < len(self._carries):
                        del self._carries[dropped]
                    self._carries.append(carry if self._snapshot is None else self._snapshot(carry))
                    self._note_stored()
            carry = self._step(i, carry)
        self.trip_count = i + 1
        return carry

    def _note_stored(self):
        stored = self.stored
        if stored > self.peak_stored:
            self.peak_stored = stored

    def reverse(self, ct, pullback):
        """Pull `ct`, the cotangent of the loop's final carry, back through every iteration,
        last first; returns the cotangent of its first carry."""
        if not callable(pullback):
            raise TypeError(f"LoopRecord.reverse: pullback must be callable, got {type(pullback).__name__}")
        if self.length is not None and self.trip_count != self.length:
            raise ValueError(f"LoopRecord.reverse: the loop was announced with length={self.length} "
                             f"but ran {self.trip_count} iterations")
        with self._lock:
            self._reversed = True
            if self._tape is not None:
                for i in range(self.trip_count - 1, -1, -1):
                    ct = pullback(i, self._tape[i], ct)
                return ct
            try:
                return self._reverse_from_checkpoints(ct, pullback)
            finally:
                # after an error part-way: the forward carries left are still a valid placement
                self._recomputing.clear()

    def _reverse_from_checkpoints(self, ct, pullback):
        positions, carries = self._placement.positions, self._carries
        end = self.trip_count
        for j in range(len(positions) - 1, -1, -1):
            ct = self._reverse_segment(positions[j], carries[j], end, self.checkpoints - j, ct, pullback)
            end = positions[j]
            if j > 0:  # its segment is done; c_0 stays, for another reverse sweep
                del positions[j]
                del carries[j]
        return ct

    def _reverse_segment(self, start, start_carry, end, slots, ct, pullback):
        """Binomial checkpointing over iterations [start, end), c_start given, `slots` slots."""
        stack = self._recomputing  # (position, carry) stored beyond start, innermost last
        position, carry = start, start_carry
        while end > start:
            length = end - position
            if length > 1:
                m = split_point(length, slots - len(stack))
                for i in range(position, position + m):
                    carry = self._step(i, carry)
                self.recomputed_steps += m
                position += m
                if end - position > 1:  # the right part needs its first carry kept
                    stack.append((position, carry if self._snapshot is None else self._snapshot(carry)))
                    self._note_stored()
                    continue
            # `carry` is c_{end-1}: pull back the last iteration of the stretch
            _, residuals = self._linearize(end - 1, carry)
            ct = pullback(end - 1, residuals, ct)
            end -= 1
            if stack and stack[-1][0] == end:
                stack.pop()
            position, carry = stack[-1] if stack else (start, start_carry)
        return ct


def forward(step, linearize, carry, keep_going, checkpoints=None, *, length=None, snapshot=None):
    """Run `while keep_going(carry): carry = <iteration>(carry)` into a LoopRecord.
    Returns (final carry, record)."""
    record = LoopRecord(step, linearize, checkpoints, length=length, snapshot=snapshot)
    while keep_going(carry):
        carry = record.step(carry)
    return carry, record
