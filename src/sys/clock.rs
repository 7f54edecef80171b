//! A cheap per-job clock that reads the same time as [`now_ns`](super::now_ns).
//!
//! Every job's start and runtime are measured, so a tiny job pays for two clock reads. Where
//! the kernel keeps time by the CPU's time-stamp counter (its clocksource is `tsc`: the counter
//! is constant-rate and agrees across CPUs), the counter is read directly instead, which costs
//! a third of a read through the vDSO, and converted to `CLOCK_MONOTONIC` nanoseconds by a rate
//! measured against that clock. A real read anchors the conversion about once a millisecond
//! of counter ticks, and the rate is measured over all the time since the clock began: an
//! error of a few microseconds is possible in the first milliseconds, and of well under one
//! after. A real read that strays from the counter's prediction by more than 1/64 of the time
//! since the anchor (a migrated VM, a counter the kernel gave up on) starts the measurement
//! over. Timeouts and the stall rule work in milliseconds, so none of this moves them. Elsewhere
//! every read is a real one.

use std::sync::OnceLock;

use super::now_ns;

/// Real reads are at most this far apart while the counter is in use.
const ANCHOR_NS: u64 = 1_000_000;
/// The rate is first trusted once measured over this long.
const CALIBRATE_NS: u64 = 1_000_000;
/// A counter reading and a real read taken further apart than this (the thread was
/// preempted between them) do not go into the rate.
const PAIR_TICKS: u64 = 2_000;
/// How far a real read may stray from what the counter predicted, as a fraction of the time
/// since the anchor (1/64) plus a little, before the rate is measured again from scratch.
const STRAY_SHIFT: u32 = 6;
const STRAY_NS: u64 = 2_000;

/// One thread's clock: [`now`](Clock::now) gives nanoseconds on `CLOCK_MONOTONIC`, never
/// going back.
pub(crate) struct Clock {
    counter: bool,
    /// Where the rate is measured from: a counter reading and the real time with it.
    base: (u64, u64),
    /// The latest real read: counter and time.
    anchor: (u64, u64),
    /// Nanoseconds per tick, in 32.32 fixed point; 0 until measured.
    rate: u64,
    /// Ticks after the anchor when the next real read is due.
    due: u64,
    last: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let mut clock = Clock {
            counter: counter_usable(),
            base: (0, 0),
            anchor: (0, 0),
            rate: 0,
            due: 0,
            last: 0,
        };
        if clock.counter {
            let (ticks, ns) = pair().unwrap_or_else(|| (ticks(), now_ns()));
            clock.base = (ticks, ns);
            clock.anchor = (ticks, ns);
        }
        clock
    }

    /// Nanoseconds on `CLOCK_MONOTONIC`.
    #[inline]
    pub(crate) fn now(&mut self) -> u64 {
        if !self.counter {
            return now_ns();
        }
        let t = ticks();
        let since = t.wrapping_sub(self.anchor.0);
        let ns = if since < self.due {
            self.anchor.1 + ((since as u128 * self.rate as u128) >> 32) as u64
        } else {
            self.anchor_again()
        };
        self.last = self.last.max(ns);
        self.last
    }

    /// A real read: moves the anchor, and measures the rate over all the time since the base.
    #[cold]
    fn anchor_again(&mut self) -> u64 {
        let Some((t, ns)) = pair() else {
            // Preempted between the two reads: the time is right, the pairing is not.
            return now_ns();
        };
        if self.rate != 0 {
            let since = t.wrapping_sub(self.anchor.0);
            let predicted = self.anchor.1 + ((since as u128 * self.rate as u128) >> 32) as u64;
            let elapsed = ns.saturating_sub(self.anchor.1);
            if predicted.abs_diff(ns) > (elapsed >> STRAY_SHIFT) + STRAY_NS || t < self.anchor.0 {
                self.base = (t, ns);
                self.rate = 0;
            }
        }
        self.anchor = (t, ns);
        let (ticks, span) = (t.wrapping_sub(self.base.0), ns.saturating_sub(self.base.1));
        if span >= CALIBRATE_NS && ticks > 0 {
            self.rate = ((span as u128) << 32).div_ceil(ticks as u128) as u64;
        }
        self.due = if self.rate == 0 {
            // Not measured yet: every read is a real one.
            0
        } else {
            ((ANCHOR_NS as u128) << 32).div_ceil(self.rate as u128) as u64
        };
        ns
    }
}

/// A counter reading and a real read taken together, or `None` if the thread was preempted
/// between them.
fn pair() -> Option<(u64, u64)> {
    let before = ticks();
    let ns = now_ns();
    let after = ticks();
    let gap = after.wrapping_sub(before);
    (gap < PAIR_TICKS).then(|| (before + gap / 2, ns))
}

/// Whether the kernel keeps time by the time-stamp counter, so that reading it directly agrees
/// with `CLOCK_MONOTONIC` on every CPU.
fn counter_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: RDTSC has no preconditions; it is present on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ticks() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The clock agrees with `CLOCK_MONOTONIC` across a stretch of reads and sleeps, whether
    /// it reads the counter or not, and never goes back.
    /// How far the clock may be from `CLOCK_MONOTONIC` in the test: see its use.
    const SLACK_NS: u64 = ANCHOR_NS / 4;

    #[test]
    fn agrees_with_the_monotonic_clock() {
        let mut clock = Clock::new();
        let mut last = 0;
        for round in 0..40 {
            // Tight reads (interpolated once the rate is known), then a pause that forces a
            // real read.
            for _ in 0..10_000 {
                let before = now_ns();
                let t = clock.now();
                let after = now_ns();
                assert!(t >= last, "the clock went back: {last} then {t}");
                last = t;
                // The counter's error stays within a few microseconds (see the module's
                // comment), but a loaded machine stretches the pairs that measure it, and
                // once went past 20 µs. A wrong conversion is off by a share of the anchor's
                // millisecond: a quarter of it either way tells one.
                assert!(
                    t + SLACK_NS >= before && t <= after + SLACK_NS,
                    "round {round}: {t} is not between {before} and {after}"
                );
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        if counter_usable() {
            assert!(clock.rate != 0, "the counter's rate was never measured");
        }
    }
}
