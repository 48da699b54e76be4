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
}
