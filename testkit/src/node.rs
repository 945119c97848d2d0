//! The Node.js peers: scripts under `tests/js` and `mailer/tests/js` run by `node`, with the
//! npm packages of the workspace's `tests/js` (`npm ci --prefix tests/js`).

use crate::skip::{program_available, skip_or_fail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workspace's folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// `tests/js/node_modules` when `node` runs and each of `packages` is installed there;
/// otherwise the skip rule for `test`, and `None`.
pub fn modules(test: &str, packages: &[&str]) -> Option<PathBuf> {
    if !program_available("node", "install Node.js 20", test) {
        return None;
    }
    let modules = workspace().join("tests/js/node_modules");
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !modules.join(p).is_dir())
        .collect();
    if !missing.is_empty() {
        skip_or_fail(
            test,
            &format!(
                "{} not installed in tests/js/node_modules (npm ci --prefix tests/js)",
                missing.join(", ")
            ),
        );
        return None;
    }
    Some(modules)
}

/// `node <script>` with `modules` on its `NODE_PATH`, killed when dropped; `script` is relative
/// to the workspace (`tests/js/smtp-server.js`).
pub fn command(modules: &Path, script: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(workspace().join(script))
        .env("NODE_PATH", modules)
        .kill_on_drop(true);
    command
}

/// Runs `script` with `args` to its end, within 60 s, and returns what it printed; fails the
/// test when the script fails.
pub async fn run(modules: &Path, script: &str, args: &[&str]) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        command(modules, script).args(args).output(),
    )
    .await
    .expect("the script ends within 60 s")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
