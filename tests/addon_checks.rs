//! Static checks of the Odoo addon `odoo_addon/whatsapp_sidecar`, run by `cargo test`.
//!
//! The checks themselves live in `tests/addon_checks.py` (Python 3.11 with `lxml` and
//! `polib`): manifest, access rows, view XML against Odoo 17's RelaxNG schemas in
//! `../shared/odoo17-rng` (or `$SHARED_DIR/odoo17-rng`), field names, refs,
//! translations. This test runs the script, and its `--self-test` mode that breaks
//! copies of the addon on purpose to prove each check catches what it claims to.
//!
//! A third test runs `pylint-odoo` (the OCA linter: manifest keys, translation
//! calls, inheritable defaults, README, ...) with its Odoo checks only.
//!
//! `lxml`, `polib` and `pylint-odoo` are installed with `python3 -m pip install
//! --quiet ...` when missing (a fresh CI machine has Python and pip only). Set
//! `PYTHON` to use another interpreter.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn pip_install(python: &str, extra: &[&str], packages: &[&str]) -> Result<Output, String> {
    let mut args = vec!["-m", "pip", "install", "--quiet"];
    args.extend_from_slice(extra);
    args.extend_from_slice(packages);
    Command::new(python)
        .args(&args)
        .output()
        .map_err(|err| format!("cannot run `{python} -m pip`: {err}"))
}

/// Imports `modules`, and installs `packages` with pip when that fails.
fn ensure_installed(modules: &str, packages: &[&str]) -> Result<(), String> {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map_err(|err| {
            format!("cannot run `{python}`: {err}. Install Python 3.11+ (or set PYTHON).")
        })?;
    if probe.status.success() {
        return Ok(());
    }
    let wanted = packages.join(" ");
    let first = pip_install(&python, &[], packages)?;
    if first.status.success() {
        return Ok(());
    }
    // A system Python marked "externally managed" (PEP 668) refuses a plain
    // install: fall back to the user's site-packages.
    let first_text = text(&first);
    if first_text.contains("externally-managed-environment") {
        let second = pip_install(&python, &["--user", "--break-system-packages"], packages)?;
        if second.status.success() {
            return Ok(());
        }
        return Err(format!(
            "`{python} -m pip install --user {wanted}` failed:\n{}",
            text(&second)
        ));
    }
    Err(format!(
        "`{python} -m pip install {wanted}` failed:\n{first_text}"
    ))
}

/// `lxml` and `polib`, installed once per test process.
fn checker_deps() -> &'static Result<(), String> {
    static DEPS: OnceLock<Result<(), String>> = OnceLock::new();
    DEPS.get_or_init(|| ensure_installed("lxml, polib", &["lxml", "polib"]))
}

fn run_checker(args: &[&str]) -> Result<Output, String> {
    if let Err(err) = checker_deps() {
        return Err(err.clone());
    }
    let script = repo_root().join("tests").join("addon_checks.py");
    Command::new(python())
        .arg(&script)
        .args(args)
        .current_dir(repo_root())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", script.display()))
}

#[test]
fn addon_passes_static_checks() {
    let output = match run_checker(&[]) {
        Ok(output) => output,
        Err(err) => panic!("{err}"),
    };
    let report = text(&output);
    assert!(
        output.status.success(),
        "tests/addon_checks.py found problems in odoo_addon/whatsapp_sidecar:\n{report}"
    );
    assert!(
        report.contains(" passed, 0 failed"),
        "unexpected checker output:\n{report}"
    );
}

#[test]
fn addon_checker_catches_broken_addons() {
    let output = match run_checker(&["--self-test"]) {
        Ok(output) => output,
        Err(err) => panic!("{err}"),
    };
    let report = text(&output);
    assert!(
        output.status.success(),
        "the addon checker missed a deliberate break:\n{report}"
    );
    assert!(
        report.contains("self-test: caught unknown field in a view")
            && report.contains("self-test: caught bad model in the access file")
            && report.contains("self-test: caught missing ref in a menu"),
        "unexpected self-test output:\n{report}"
    );
}

#[test]
fn addon_passes_pylint_odoo() {
    if let Err(err) = ensure_installed("pylint_odoo", &["pylint-odoo"]) {
        panic!("{err}");
    }
    let output = Command::new(python())
        .args([
            "-m",
            "pylint",
            "--load-plugins=pylint_odoo",
            "--valid-odoo-versions=17.0",
            "--manifest-required-authors=whatsapp-sidecar contributors",
            "--disable=all",
            "--enable=odoolint",
            "--score=n",
        ])
        .arg(repo_root().join("odoo_addon").join("whatsapp_sidecar"))
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) => panic!("cannot run pylint: {err}"),
    };
    assert!(
        output.status.success(),
        "pylint-odoo found problems in odoo_addon/whatsapp_sidecar:\n{}",
        text(&output)
    );
}
