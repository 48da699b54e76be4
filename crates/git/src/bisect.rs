//! Finding the merges that break the tests (pure logic, no git): like `git bisect run`, but
//! over the linear sequence of an integration's merges, and repeated until the tests pass.

use std::collections::HashMap;

/// One merge left out because the tests failed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    /// Its index in the sequence given to [`bisect`].
    pub index: usize,
    /// The earlier merge it breaks the tests together with (None: it breaks them on its
    /// own, onto the base alone).
    pub broke_with: Option<usize>,
}

/// What [`bisect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bisection {
    /// The merges kept, in order.
    pub kept: Vec<usize>,
    /// The merges left out, in the order found.
    pub culprits: Vec<Culprit>,
    /// How many times `test` ran.
    pub test_runs: usize,
}

/// The most test runs [`bisect`] needs for `n` merges and `culprits` merges left out:
/// per culprit one run of the whole sequence, at most ⌈log2 n⌉ to find the first failing
/// merge and at most ⌈log2 n⌉ to find the earlier merge it fails with; then one passing run.
pub fn max_test_runs(n: usize, culprits: usize) -> usize {
    let log = if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    };
    culprits * (1 + 2 * log) + 1
}

/// Test merges `0..n` integrated in order and leave out those that break the tests.
///
/// `test(seq)` integrates the merges `seq` (indices, ascending) onto the base and says
/// whether the tests pass (the base alone is taken to pass). While the whole sequence
/// fails: binary-search the first failing prefix, whose last merge is the culprit; then
/// binary-search the shortest run of the merges before it that fails together with it
/// (none: it fails alone); leave it out, and test the rest again. Each set is tested at
/// most once. Stops when the sequence passes or is empty.
pub fn bisect<E>(
    n: usize,
    mut test: impl FnMut(&[usize]) -> Result<bool, E>,
) -> Result<Bisection, E> {
    let mut runs = 0usize;
    let mut seen: HashMap<Vec<usize>, bool> = HashMap::new();
    let mut run = |seq: Vec<usize>, runs: &mut usize| -> Result<bool, E> {
        if seq.is_empty() {
            return Ok(true);
        }
        if let Some(&r) = seen.get(&seq) {
            return Ok(r);
        }
        *runs += 1;
        let r = test(&seq)?;
        seen.insert(seq, r);
        Ok(r)
    };
    let mut kept: Vec<usize> = (0..n).collect();
    let mut culprits = Vec::new();
    while !kept.is_empty() && !run(kept.clone(), &mut runs)? {
        // The first failing prefix: kept[..lo] passes, kept[..hi] fails.
        let (mut lo, mut hi) = (0usize, kept.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if run(kept[..mid].to_vec(), &mut runs)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let culprit = kept[hi - 1];
        let before = &kept[..hi - 1];
        // The shortest prefix of `before` that fails together with the culprit.
        let with = |j: usize| {
            let mut s = before[..j].to_vec();
            s.push(culprit);
            s
        };
        // j = before.len() is known to fail; j = -1 stands for "nothing fails".
        let (mut lo, mut hi) = (-1isize, before.len() as isize);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if run(with(mid as usize), &mut runs)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let hi = hi as usize;
        culprits.push(Culprit {
            index: culprit,
            broke_with: (hi > 0).then(|| before[hi - 1]),
        });
        kept.retain(|&i| i != culprit);
    }
    Ok(Bisection {
        kept,
        culprits,
        test_runs: runs,
    })
}

/// What [`bisect_parallel`] found: the bisection, how many batches of tests ran (the wall
/// time, in test durations, when each batch runs in parallel), and whether the base alone
/// failed (then nothing else was concluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParallelBisection {
    pub bisection: Bisection,
    pub rounds: usize,
    pub base_failed: bool,
}

/// The most batches [`bisect_parallel`] needs for `n` merges, `k` slots and `culprits`
/// merges left out: the first batch (the base, when asked for, and the whole sequence); per
/// culprit at most ⌈log_(k+1) n⌉ + 1 batches to find the first failing merge and
/// ⌈log_k n⌉ + 1 to find the earlier merge it fails with (a conservative count: each batch
/// after the first splits the candidates k+1 ways); then one passing batch, unless the
/// sequence without the culprit already passed on a spare slot. Each batch runs at most
/// `k` tests, so test runs ≤ `k` × batches. With `k` = 1 it is [`bisect`] one at a time,
/// plus the base's run.
pub fn max_rounds(n: usize, k: usize, culprits: usize) -> usize {
    let k = k.max(1);
    let log = |base: usize| -> usize {
        if base < 2 {
            return n;
        }
        let (mut r, mut span) = (0usize, 1usize);
        while span < n.max(1) {
            span = span.saturating_mul(base);
            r += 1;
        }
        r
    };
    if k == 1 {
        return 1 + max_test_runs(n, culprits);
    }
    1 + culprits * (log(k + 1) + 1 + log(k) + 1) + 1
}

/// Up to `k` points strictly between `lo` and `hi`, evenly spread (k+1 equal parts).
fn interior(lo: isize, hi: isize, k: usize) -> Vec<isize> {
    let mut out: Vec<isize> = (1..=k as isize)
        .map(|i| lo + (i * (hi - lo)) / (k as isize + 1))
        .filter(|&x| x > lo && x < hi)
        .collect();
    out.dedup();
    out
}

/// Up to `k` points in `(lo, hi]`, `hi` included, evenly spread (k equal parts).
fn through(lo: isize, hi: isize, k: usize) -> Vec<isize> {
    let mut out: Vec<isize> = (1..=k as isize)
        .map(|i| lo + (i * (hi - lo) + k as isize - 1) / k as isize)
        .filter(|&x| x > lo && x <= hi)
        .collect();
    out.dedup();
    out
}

/// Tests a batch of sets at once: which pass.
type BatchTest<'f, E> = dyn FnMut(&[Vec<usize>]) -> Result<Vec<bool>, E> + 'f;

/// Runs batches of sets, each set tested at most once.
struct Batches<'f, E> {
    seen: HashMap<Vec<usize>, bool>,
    runs: usize,
    rounds: usize,
    test: &'f mut BatchTest<'f, E>,
}

impl<E> Batches<'_, E> {
    /// The results of `sets`; the empty set is the base, tested only when `base` is true.
    fn run(&mut self, sets: &[Vec<usize>], base: bool) -> Result<Vec<bool>, E> {
        let mut todo: Vec<Vec<usize>> = Vec::new();
        for s in sets {
            if (s.is_empty() && !base) || self.seen.contains_key(s) || todo.contains(s) {
                continue;
            }
            todo.push(s.clone());
        }
        if !todo.is_empty() {
            let results = (self.test)(&todo)?;
            self.runs += todo.len();
            self.rounds += 1;
            for (s, r) in todo.into_iter().zip(results) {
                self.seen.insert(s, r);
            }
        }
        Ok(sets
            .iter()
            .map(|s| self.seen.get(s).copied().unwrap_or(s.is_empty()))
            .collect())
    }

    /// The smallest `x` in `(lo, hi]` where `set(x)` fails, `lo` passing; `hi` is known to
    /// fail when `hi_fails`, else it may pass (then None). `k` tests per batch; the first
    /// batch with a slot to spare also carries `extra` (sets tested on the side).
    fn search(
        &mut self,
        (mut lo, mut hi): (isize, isize),
        mut hi_fails: bool,
        k: usize,
        mut extra: Vec<Vec<usize>>,
        set: &dyn Fn(isize) -> Vec<usize>,
    ) -> Result<Option<isize>, E> {
        loop {
            if hi_fails && hi - lo <= 1 {
                return Ok(Some(hi));
            }
            if !hi_fails && hi <= lo {
                return Ok(None);
            }
            let points = if hi_fails {
                interior(lo, hi, k)
            } else {
                through(lo, hi, k)
            };
            let mut sets: Vec<Vec<usize>> = points.iter().map(|&x| set(x)).collect();
            if sets.len() + extra.len() <= k {
                // A slot to spare: the side sets go along.
                sets.append(&mut extra);
            }
            let results = self.run(&sets, false)?;
            match points.iter().zip(&results).find(|(_, r)| !**r) {
                Some((&f, _)) => {
                    lo = points
                        .iter()
                        .zip(&results)
                        .filter(|(&x, &r)| r && x < f)
                        .map(|(&x, _)| x)
                        .fold(lo, isize::max);
                    hi = f;
                    hi_fails = true;
                }
                None => {
                    if !hi_fails {
                        return Ok(None);
                    }
                    lo = points.iter().copied().fold(lo, isize::max);
                }
            }
        }
    }
}

/// [`bisect`] with `k` tests at once: `test_batch(sets)` tests up to `k` sets in parallel
/// (each the merges integrated in order onto the base) and says which pass.
///
/// A speculative, dependent pipeline: the first batch tests the base (with `test_base`)
/// and `k`−1 evenly spread prefixes of the sequence ending with the whole of it, each
/// assuming the ones before it pass. While a prefix fails, each batch tests `k` prefixes
/// between the longest passing and the shortest failing one, so the first failing merge
/// (the culprit) is found in about ⌈log_(k+1) n⌉ batches; then `k` prefixes of the merges
/// before it, each with the culprit, find the earlier merge it fails with — the first of
/// those batches with a slot to spare also tests the whole sequence without the culprit,
/// speculating that it is the only one. Each set is tested at most once; see
/// [`max_rounds`].
pub fn bisect_parallel<E>(
    n: usize,
    k: usize,
    test_base: bool,
    mut test_batch: impl FnMut(&[Vec<usize>]) -> Result<Vec<bool>, E>,
) -> Result<ParallelBisection, E> {
    let k = k.max(1);
    let mut b = Batches {
        seen: HashMap::new(),
        runs: 0,
        rounds: 0,
        test: &mut test_batch,
    };
    let mut kept: Vec<usize> = (0..n).collect();
    let mut culprits = Vec::new();
    if test_base {
        // The base and the first prefixes, together.
        let mut sets = vec![Vec::new()];
        if k > 1 {
            sets.extend(
                through(0, n as isize, k - 1)
                    .iter()
                    .map(|&x| kept[..x as usize].to_vec()),
            );
        }
        let r = b.run(&sets, true)?;
        if !r[0] {
            return Ok(ParallelBisection {
                bisection: Bisection {
                    kept,
                    culprits,
                    test_runs: b.runs,
                },
                rounds: b.rounds,
                base_failed: true,
            });
        }
    }
    // The longest prefix known to pass.
    let mut lo = 0isize;
    loop {
        if kept.is_empty() {
            break;
        }
        let len = kept.len() as isize;
        // What earlier batches already know about longer prefixes.
        let mut hi = len;
        let mut hi_fails = false;
        for x in (lo + 1)..=len {
            match b.seen.get(&kept[..x as usize]) {
                Some(true) => lo = x,
                Some(false) => {
                    hi = x;
                    hi_fails = true;
                    break;
                }
                None => {}
            }
        }
        let prefix = |x: isize| kept[..x as usize].to_vec();
        let Some(h) = b.search((lo, hi), hi_fails, k, Vec::new(), &prefix)? else {
            break;
        };
        let h = h as usize;
        let culprit = kept[h - 1];
        let before: Vec<usize> = kept[..h - 1].to_vec();
        let rest: Vec<usize> = kept.iter().copied().filter(|&i| i != culprit).collect();
        let with = |j: isize| {
            let mut s = before[..j as usize].to_vec();
            s.push(culprit);
            s
        };
        // j = before.len() fails (it is the failing prefix); j = -1 stands for "nothing
        // fails": the culprit fails alone when j = 0 fails.
        let extra = if k > 1 && rest.len() > before.len() {
            vec![rest.clone()]
        } else {
            Vec::new()
        };
        let j = b
            .search((-1, before.len() as isize), true, k, extra, &with)?
            .expect("the failing prefix is known") as usize;
        culprits.push(Culprit {
            index: culprit,
            broke_with: (j > 0).then(|| before[j - 1]),
        });
        kept = rest;
        lo = (h - 1) as isize;
    }
    Ok(ParallelBisection {
        bisection: Bisection {
            kept,
            culprits,
            test_runs: b.runs,
        },
        rounds: b.rounds,
        base_failed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A synthetic test suite: fails when any "bad set" is wholly included.
    fn suite<'a>(bad: &'a [&'a [usize]]) -> impl Fn(&[usize]) -> bool + 'a {
        move |seq: &[usize]| {
            let s: BTreeSet<usize> = seq.iter().copied().collect();
            !bad.iter().any(|b| b.iter().all(|i| s.contains(i)))
        }
    }

    fn run(n: usize, bad: &[&[usize]]) -> Bisection {
        let t = suite(bad);
        bisect(n, |s| Ok::<_, ()>(t(s))).unwrap()
    }

    #[test]
    fn all_pass_costs_one_run() {
        let b = run(10, &[]);
        assert_eq!(b.test_runs, 1);
        assert_eq!(b.kept, (0..10).collect::<Vec<_>>());
        assert!(b.culprits.is_empty());
        assert_eq!(run(0, &[]).test_runs, 0);
    }

    #[test]
    fn one_merge_that_breaks_alone() {
        let b = run(16, &[&[9]]);
        assert_eq!(
            b.culprits,
            vec![Culprit {
                index: 9,
                broke_with: None
            }]
        );
        assert!(!b.kept.contains(&9) && b.kept.len() == 15);
        assert!(b.test_runs <= max_test_runs(16, 1), "{}", b.test_runs);
    }

    #[test]
    fn a_pair_that_breaks_only_together() {
        // 3 and 11 each pass; together they fail: 11 is left out, naming 3.
        let b = run(20, &[&[3, 11]]);
        assert_eq!(
            b.culprits,
            vec![Culprit {
                index: 11,
                broke_with: Some(3)
            }]
        );
        assert!(b.kept.contains(&3));
        assert!(b.test_runs <= max_test_runs(20, 1), "{}", b.test_runs);
    }

    #[test]
    fn runs_stay_within_the_bound_for_every_placement() {
        let mut worst = 0usize;
        for n in 1..=40usize {
            for a in 0..n {
                for b in a..n {
                    let sets: Vec<Vec<usize>> = if a == b {
                        vec![vec![a]]
                    } else {
                        vec![vec![a, b]]
                    };
                    let refs: Vec<&[usize]> = sets.iter().map(Vec::as_slice).collect();
                    let r = run(n, &refs);
                    assert_eq!(r.culprits.len(), 1, "n={n} a={a} b={b}");
                    assert_eq!(r.culprits[0].index, b);
                    assert_eq!(r.culprits[0].broke_with, (a != b).then_some(a));
                    assert!(
                        r.test_runs <= max_test_runs(n, 1),
                        "n={n} a={a} b={b}: {} runs > {}",
                        r.test_runs,
                        max_test_runs(n, 1)
                    );
                    worst = worst.max(r.test_runs);
                }
            }
        }
        assert_eq!(max_test_runs(40, 1), 14);
        assert!(worst <= 14);
    }

    #[test]
    fn several_culprits_and_counting_calls() {
        let t = suite(&[&[2], &[5, 7], &[12]]);
        let mut calls = 0;
        let b = bisect(16, |s| {
            calls += 1;
            Ok::<_, ()>(t(s))
        })
        .unwrap();
        let found: Vec<(usize, Option<usize>)> =
            b.culprits.iter().map(|c| (c.index, c.broke_with)).collect();
        assert_eq!(found, vec![(2, None), (7, Some(5)), (12, None)]);
        assert_eq!(calls, b.test_runs);
        assert!(b.test_runs <= max_test_runs(16, 3), "{}", b.test_runs);
        assert!(t(&b.kept));
    }

    #[test]
    fn everything_broken_leaves_nothing() {
        let sets: Vec<Vec<usize>> = (0..5).map(|i| vec![i]).collect();
        let refs: Vec<&[usize]> = sets.iter().map(Vec::as_slice).collect();
        let b = run(5, &refs);
        assert!(b.kept.is_empty());
        assert_eq!(b.culprits.len(), 5);
        assert!(b.test_runs <= max_test_runs(5, 5));
    }

    #[test]
    fn errors_stop_the_search() {
        let r = bisect(4, |_| Err::<bool, &str>("cannot start"));
        assert_eq!(r, Err("cannot start"));
    }

    fn run_k(n: usize, k: usize, bad: &[&[usize]]) -> ParallelBisection {
        let t = suite(bad);
        bisect_parallel(n, k, true, |sets| {
            assert!(sets.len() <= k, "{} sets for {k} slots", sets.len());
            Ok::<_, ()>(sets.iter().map(|s| t(s)).collect())
        })
        .unwrap()
    }

    #[test]
    fn parallel_finds_what_the_serial_one_finds_within_its_bound() {
        for k in [1usize, 2, 3, 4, 8] {
            for n in [1usize, 2, 5, 13, 44] {
                for a in 0..n {
                    for b in a..n {
                        let sets: Vec<Vec<usize>> = if a == b {
                            vec![vec![a]]
                        } else {
                            vec![vec![a, b]]
                        };
                        let refs: Vec<&[usize]> = sets.iter().map(Vec::as_slice).collect();
                        let p = run_k(n, k, &refs);
                        let s = run(n, &refs);
                        assert_eq!(p.bisection.culprits, s.culprits, "n={n} k={k} a={a} b={b}");
                        assert_eq!(p.bisection.kept, s.kept);
                        assert!(!p.base_failed);
                        assert!(
                            p.rounds <= max_rounds(n, k, 1),
                            "n={n} k={k} a={a} b={b}: {} rounds > {}",
                            p.rounds,
                            max_rounds(n, k, 1)
                        );
                        assert!(p.bisection.test_runs <= k * max_rounds(n, k, 1));
                    }
                }
            }
        }
    }

    #[test]
    fn forty_four_merges_three_slots_take_at_most_half_the_rounds() {
        // One combination failure (a pair), every placement: the batches (wall time) of
        // 3 slots against the serial test runs, the base's run counted in both.
        let n = 44;
        let (mut worst_ratio, mut total_p, mut total_s) = (0f64, 0usize, 0usize);
        for a in 0..n {
            for b in a + 1..n {
                let p = run_k(n, 3, &[&[a, b]]);
                let s = 1 + run(n, &[&[a, b]]).test_runs;
                total_p += p.rounds;
                total_s += s;
                worst_ratio = worst_ratio.max(p.rounds as f64 / s as f64);
            }
        }
        let mean = total_p as f64 / total_s as f64;
        eprintln!("44 merges, 3 slots: batches / serial runs = {mean:.2} on average, {worst_ratio:.2} at worst");
        assert!(mean <= 0.55, "{mean}");
        assert_eq!(max_rounds(44, 3, 1), 1 + (3 + 1 + 4 + 1) + 1);
    }

    #[test]
    fn parallel_several_culprits_and_a_failing_base() {
        let t = suite(&[&[2], &[5, 7], &[12]]);
        let p = bisect_parallel(16, 3, true, |sets| {
            Ok::<_, ()>(sets.iter().map(|s| t(s)).collect())
        })
        .unwrap();
        let found: Vec<(usize, Option<usize>)> = p
            .bisection
            .culprits
            .iter()
            .map(|c| (c.index, c.broke_with))
            .collect();
        assert_eq!(found, vec![(2, None), (7, Some(5)), (12, None)]);
        assert!(t(&p.bisection.kept));
        assert!(p.rounds <= max_rounds(16, 3, 3));
        // The base fails: nothing else is concluded after the first batch.
        let p = bisect_parallel(8, 3, true, |sets| Ok::<_, ()>(vec![false; sets.len()])).unwrap();
        assert!(p.base_failed);
        assert_eq!(p.rounds, 1);
        assert_eq!(
            bisect_parallel(4, 2, true, |_| Err::<Vec<bool>, &str>("cannot start")),
            Err("cannot start")
        );
    }
}
