//! Records the git commit the server is built from, for `/api/health` and `buildInfo`.

use std::process::Command;

#[allow(clippy::disallowed_methods)] // A build script reads its environment.
fn main() {
    println!("cargo:rerun-if-env-changed=TANDEM_COMMIT");
    // Only paths that exist: cargo reruns a build script whose watched path is missing on
    // every build, which would recompile this crate and everything above it each time.
    for path in [
        "../../.git/HEAD",
        "../../.git/refs/heads",
        "../../.git/packed-refs",
    ] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("TANDEM_COMMIT").ok().or_else(|| {
        let output = Command::new("git")
            .args(["rev-parse", "--short=10", "HEAD"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=TANDEM_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_owned())
    );
}
