//! The real-output corpus in `fixtures/testparse/`: one test per sample, asserting the exact
//! counts (a field left out must be `None`) and runners. How each sample was produced is in
//! `fixtures/testparse/README.md`.

use super::{parse, Counts};
use std::path::Path;

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fixtures/testparse")
}

fn check(file: &str, runners: Option<&str>, expected: Counts) {
    let path = dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let got = parse(&text);
    assert_eq!(
        got.as_ref().map(|s| s.label()).as_deref(),
        runners,
        "{file}: runners"
    );
    assert_eq!(
        got.map(|s| s.counts).unwrap_or_default(),
        expected,
        "{file}: counts"
    );
}

macro_rules! corpus {
    ($($name:ident: $file:literal => $runners:expr, { $($field:ident: $v:expr),* $(,)? })*) => {
        $(
            #[test]
            #[allow(clippy::needless_update)]
            fn $name() {
                check($file, $runners, Counts { $($field: Some($v),)* ..Counts::default() });
            }
        )*
        /// Every sample that has a case above.
        const SAMPLES: &[&str] = &[$($file),*];
    };
}

const CARGO: Option<&str> = Some("cargo-test");
const NEXTEST: Option<&str> = Some("nextest");
const PYTEST: Option<&str> = Some("pytest");
const UNITTEST: Option<&str> = Some("unittest");
const GO: Option<&str> = Some("go-test");
const JEST: Option<&str> = Some("jest");
const VITEST: Option<&str> = Some("vitest");
const MOCHA: Option<&str> = Some("mocha");
const NODE: Option<&str> = Some("node-test");
const RSPEC: Option<&str> = Some("rspec");
const TAP: Option<&str> = Some("tap");
const PROVE: Option<&str> = Some("prove");
const PLAIN: Option<&str> = Some("plain");

corpus! {
    // cargo test: three binaries (lib, tests/api.rs, doc-tests) summed.
    cargo_pass: "cargo-pass.txt" => CARGO, { passed: 9, failed: 0, skipped: 2, deselected: 0 }
    // Stops after the lib binary; a test's captured stdout holds a fake libtest block, a
    // pytest banner and a plain line, none of which count.
    cargo_fail: "cargo-fail.txt" => CARGO, { passed: 2, failed: 2, skipped: 1, deselected: 0 }
    cargo_fail_no_fail_fast: "cargo-fail-no-fail-fast.txt" => CARGO,
        { passed: 6, failed: 3, skipped: 2, deselected: 0 }
    cargo_quiet_filtered: "cargo-quiet-filtered.txt" => CARGO,
        { passed: 3, failed: 0, skipped: 0, deselected: 6 }
    cargo_include_ignored: "cargo-include-ignored.txt" => CARGO,
        { passed: 11, failed: 0, skipped: 0, deselected: 0 }
    // tests/api.rs aborts (SIGABRT) before its result line: one error.
    cargo_abort: "cargo-abort.txt" => CARGO,
        { passed: 6, failed: 0, skipped: 1, deselected: 0, errors: 1 }
    cargo_compile_error: "cargo-compile-error.txt" => None, {}

    nextest_pass: "nextest-pass.txt" => NEXTEST, { passed: 7, failed: 0, skipped: 2 }
    // Indented libtest output of the failing tests is inside the nextest run.
    nextest_fail_fast: "nextest-fail-fast.txt" => NEXTEST, { passed: 2, failed: 2, skipped: 2 }
    nextest_fail: "nextest-fail.txt" => NEXTEST, { passed: 4, failed: 3, skipped: 2 }
    nextest_filtered: "nextest-filtered.txt" => NEXTEST, { passed: 3, failed: 0, skipped: 6 }
    nextest_timeout: "nextest-timeout.txt" => NEXTEST, { passed: 6, failed: 1, skipped: 2 }
    nextest_abort: "nextest-abort.txt" => NEXTEST, { passed: 6, failed: 1, skipped: 2 }

    pytest_default: "pytest-default.txt" => PYTEST, {
        passed: 8, failed: 0, skipped: 1, errors: 0, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    pytest_q: "pytest-q.txt" => PYTEST, {
        passed: 8, failed: 0, skipped: 1, errors: 0, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    // Captured stdout of the failing test prints `4 passed in 0.3s`, a banner and a plain line.
    pytest_q_fail: "pytest-q-fail.txt" => PYTEST, {
        passed: 6, failed: 1, skipped: 1, errors: 1, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    pytest_v_fail: "pytest-v-fail.txt" => PYTEST, {
        passed: 6, failed: 1, skipped: 1, errors: 1, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    pytest_x: "pytest-x.txt" => PYTEST, {
        passed: 4, failed: 1, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_q_deselected: "pytest-q-deselected.txt" => PYTEST, {
        passed: 7, failed: 0, skipped: 1, errors: 0, deselected: 1, xfailed: 1, xpassed: 1, warnings: 1 }
    pytest_v_deselected: "pytest-v-deselected.txt" => PYTEST, {
        passed: 1, failed: 0, skipped: 0, errors: 0, deselected: 10, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_q_none_selected: "pytest-q-none-selected.txt" => PYTEST, {
        passed: 0, failed: 0, skipped: 0, errors: 0, deselected: 11, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_xdist_fail: "pytest-xdist-fail.txt" => PYTEST, {
        passed: 6, failed: 1, skipped: 1, errors: 1, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    pytest_xdist_q: "pytest-xdist-q.txt" => PYTEST, {
        passed: 8, failed: 0, skipped: 1, errors: 0, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    pytest_collection_error: "pytest-collection-error.txt" => PYTEST, {
        passed: 0, failed: 0, skipped: 0, errors: 1, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_q_continue_on_collection_errors: "pytest-q-continue-on-collection-errors.txt" => PYTEST, {
        passed: 2, failed: 0, skipped: 0, errors: 1, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_no_tests: "pytest-no-tests.txt" => PYTEST, {
        passed: 0, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_q_no_tests: "pytest-q-no-tests.txt" => PYTEST, {
        passed: 0, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    // pytest 9 on small suites: all passing (with a pyproject.toml), passing and skipping,
    // one failing; each with and without -q.
    pytest9_pass: "pytest9-pass.txt" => PYTEST, {
        passed: 3, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_q_pass: "pytest9-q-pass.txt" => PYTEST, {
        passed: 3, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_skip: "pytest9-skip.txt" => PYTEST, {
        passed: 3, failed: 0, skipped: 1, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_q_skip: "pytest9-q-skip.txt" => PYTEST, {
        passed: 3, failed: 0, skipped: 1, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_fail: "pytest9-fail.txt" => PYTEST, {
        passed: 3, failed: 1, skipped: 1, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_q_fail: "pytest9-q-fail.txt" => PYTEST, {
        passed: 3, failed: 1, skipped: 1, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    // pytest 9's built-in subtests: `-q` adds "3 subtests passed", which is not 3 more tests.
    pytest9_subtests: "pytest9-subtests.txt" => PYTEST, {
        passed: 2, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    // A failing subtest counts in `failed` (with its test), a skipped one in `skipped` with -q.
    pytest9_subtests_fail: "pytest9-subtests-fail.txt" => PYTEST, {
        passed: 1, failed: 2, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_q_subtests_fail: "pytest9-q-subtests-fail.txt" => PYTEST, {
        passed: 1, failed: 2, skipped: 1, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    // Longer than a minute: the duration gains `(0:01:01)`.
    pytest9_q_slow: "pytest9-q-slow.txt" => PYTEST, {
        passed: 2, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest9_q_subtests: "pytest9-q-subtests.txt" => PYTEST, {
        passed: 2, failed: 0, skipped: 0, errors: 0, deselected: 0, xfailed: 0, xpassed: 0, warnings: 0 }
    pytest_color: "pytest-color.txt" => PYTEST, {
        passed: 6, failed: 1, skipped: 1, errors: 1, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }

    // Python 3.11.7's unittest. A test prints a fake `Ran 99 tests` + `OK` and a plain
    // line; an exception in a test (unittest's "error") is a failed test; three failing
    // subtests of one test are one failed test; a module that fails to import is an error.
    unittest_pass: "unittest-pass.txt" => UNITTEST,
        { passed: 6, failed: 0, skipped: 1, errors: 0, xfailed: 2, xpassed: 0 }
    unittest_v_pass: "unittest-v-pass.txt" => UNITTEST,
        { passed: 6, failed: 0, skipped: 1, errors: 0, xfailed: 2, xpassed: 0 }
    unittest_fail: "unittest-fail.txt" => UNITTEST,
        { passed: 3, failed: 3, skipped: 1, errors: 0, xfailed: 2, xpassed: 0 }
    unittest_v_fail: "unittest-v-fail.txt" => UNITTEST,
        { passed: 3, failed: 3, skipped: 1, errors: 0, xfailed: 1, xpassed: 1 }
    unittest_subtests_fail: "unittest-subtests-fail.txt" => UNITTEST,
        { passed: 5, failed: 1, skipped: 1, errors: 0, xfailed: 2, xpassed: 0 }
    unittest_no_tests: "unittest-no-tests.txt" => UNITTEST,
        { passed: 0, failed: 0, skipped: 0, errors: 0, xfailed: 0, xpassed: 0 }
    unittest_import_error: "unittest-import-error.txt" => UNITTEST,
        { passed: 6, failed: 0, skipped: 1, errors: 1, xfailed: 2, xpassed: 0 }

    // Without -v go prints failures only: passed and skipped are unknown.
    go_pass: "go-pass.txt" => GO, { failed: 0, errors: 0 }
    // A test prints a fake `--- PASS` and `ok <pkg>` line; exits/ fails in TestMain (error).
    go_fail: "go-fail.txt" => GO, { failed: 3, errors: 1 }
    go_v_pass: "go-v-pass.txt" => GO, { passed: 9, failed: 0, skipped: 1, errors: 0 }
    go_v_fail: "go-v-fail.txt" => GO, { passed: 5, failed: 3, skipped: 1, errors: 1 }
    go_json_pass: "go-json-pass.txt" => GO, { passed: 9, failed: 0, skipped: 1, errors: 0 }
    go_json_fail: "go-json-fail.txt" => GO, { passed: 5, failed: 3, skipped: 1, errors: 1 }
    go_build_failed: "go-build-failed.txt" => GO, { failed: 0, errors: 1 }
    go_v_build_failed: "go-v-build-failed.txt" => GO, { passed: 9, failed: 0, skipped: 1, errors: 1 }
    go_json_build_failed: "go-json-build-failed.txt" => GO,
        { passed: 9, failed: 0, skipped: 1, errors: 1 }

    jest_pass: "jest-pass.txt" => JEST, { passed: 4, failed: 0, skipped: 2, errors: 0 }
    jest_fail: "jest-fail.txt" => JEST, { passed: 3, failed: 1, skipped: 2, errors: 0 }
    jest_failing_suite: "jest-failing-suite.txt" => JEST,
        { passed: 3, failed: 1, skipped: 2, errors: 1 }
    jest_verbose_filtered: "jest-verbose-filtered.txt" => JEST,
        { passed: 1, failed: 0, skipped: 5, errors: 0 }

    vitest_pass: "vitest-pass.txt" => VITEST,
        { passed: 4, failed: 0, skipped: 2, xfailed: 1, errors: 0 }
    vitest_nocolor_pass: "vitest-nocolor-pass.txt" => VITEST,
        { passed: 4, failed: 0, skipped: 2, xfailed: 1, errors: 0 }
    vitest_fail: "vitest-fail.txt" => VITEST,
        { passed: 3, failed: 1, skipped: 2, xfailed: 1, errors: 0 }
    vitest_failing_suite_and_error: "vitest-failing-suite-and-error.txt" => VITEST,
        { passed: 5, failed: 1, skipped: 2, xfailed: 1, errors: 2 }
    vitest_nocolor_failing_suite_and_error: "vitest-nocolor-failing-suite-and-error.txt" => VITEST,
        { passed: 5, failed: 1, skipped: 2, xfailed: 1, errors: 2 }
    vitest_filtered: "vitest-filtered.txt" => VITEST,
        { passed: 1, failed: 0, skipped: 6, xfailed: 0, errors: 0 }

    mocha_pass: "mocha-pass.txt" => MOCHA, { passed: 4, failed: 0, skipped: 2 }
    // A test logs `  9 passing (1ms)` before the real summary.
    mocha_fail: "mocha-fail.txt" => MOCHA, { passed: 2, failed: 2, skipped: 2 }
    mocha_dot_pass: "mocha-dot-pass.txt" => MOCHA, { passed: 4, failed: 0, skipped: 2 }
    // mocha's TAP reporter; the logged `9 passing` is inside the TAP stream.
    mocha_tap_fail: "mocha-tap-fail.txt" => TAP, { passed: 2, failed: 2, skipped: 2, errors: 0 }

    node_test_spec_pass: "node-test-spec-pass.txt" => NODE, { passed: 4, failed: 0, skipped: 2 }
    node_test_spec_fail: "node-test-spec-fail.txt" => NODE, { passed: 3, failed: 1, skipped: 2 }
    node_test_tap_pass: "node-test-tap-pass.txt" => TAP,
        { passed: 4, failed: 0, skipped: 2, errors: 0 }
    node_test_tap_fail: "node-test-tap-fail.txt" => TAP,
        { passed: 3, failed: 1, skipped: 2, errors: 0 }

    rspec_pass: "rspec-pass.txt" => RSPEC, { passed: 3, failed: 0, skipped: 3, errors: 0 }
    // A test prints `9 examples, 0 failures`.
    rspec_fail: "rspec-fail.txt" => RSPEC, { passed: 2, failed: 1, skipped: 3, errors: 0 }
    rspec_doc_fail: "rspec-doc-fail.txt" => RSPEC, { passed: 2, failed: 1, skipped: 3, errors: 0 }
    rspec_load_error: "rspec-load-error.txt" => RSPEC,
        { passed: 0, failed: 0, skipped: 0, errors: 1 }

    tap_perl_fail: "tap-perl-fail.txt" => TAP, { passed: 2, failed: 1, skipped: 2, errors: 0 }
    // prove counts skipped and TODO tests as passed and does not say how many.
    prove_pass: "prove-pass.txt" => PROVE, { passed: 6, failed: 0, errors: 0 }
    prove_fail: "prove-fail.txt" => PROVE, { passed: 5, failed: 1, errors: 0 }
    prove_v_fail: "prove-v-fail.txt" => PROVE, { passed: 5, failed: 1, errors: 0 }
    prove_dies: "prove-dies.txt" => PROVE, { passed: 7, failed: 0, errors: 1 }

    // `cargo test; pytest -q` in one script: both summed.
    mixed_cargo_then_pytest: "mixed-cargo-then-pytest.txt" => Some("cargo-test+pytest"), {
        passed: 17, failed: 0, skipped: 3, errors: 0, deselected: 0, xfailed: 1, xpassed: 1, warnings: 1 }
    plain_pass: "plain-pass.txt" => PLAIN, { passed: 3, failed: 0 }
    plain_prefixed_fail: "plain-prefixed-fail.txt" => PLAIN, { passed: 3, failed: 1, skipped: 1 }
}

#[test]
fn every_sample_has_a_case() {
    let mut missing: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt") && !SAMPLES.contains(&n.as_str()))
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "samples without a case: {missing:?}");
}
