//! `mast`: one binary, one subcommand per component (like k3s). Each subcommand lives in
//! its own module; this file only parses the command line and dispatches.

use clap::Parser;

/// A Kubernetes-compatible container orchestrator with a highly available control plane.
#[derive(Debug, Parser)]
#[command(name = "mast", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "mast {}: no components yet; see README.md",
        env!("CARGO_PKG_VERSION")
    );
}
