//! `loadgen`: the venue load generator as a plain Rust binary (the same code as
//! `tradecore loadgen`, without Python and without the PNG plot).
//!
//! Prints the summary, writes the JSON with `--json FILE`, and exits 0 when the run's checks
//! pass, 1 when they fail, 2 on bad options or when the venue cannot be reached.

use std::process::ExitCode;

use tradecore_engine::loadgen::{self, Defaults, Options};

fn help() -> String {
    let mut s = String::from(
        "usage: loadgen [OPTIONS]\n\n\
         Drive a tradecore venue with N TCP sessions and report throughput and wire-to-wire\n\
         latency (see `tradecore loadgen --help` for the same options with more words).\n\n\
         options:\n\
         \x20 --config FILE          venue config (address, instruments, accounts)\n\
         \x20 --connect HOST:PORT    order-entry address (default: the config's)\n\
         \x20 --account ID:KEY       a login (repeatable); sessions use them round robin\n\
         \x20 --keys-file FILE       logins, one `ID KEY` per line\n\
         \x20 --sessions N           TCP sessions (default: one per login)\n\
         \x20 --rate R|max           commands/s (open loop) or max (closed loop)\n\
         \x20 --window W             closed loop: commands in flight per session\n\
         \x20 --duration S           seconds of sending\n\
         \x20 --warmup S             seconds excluded from latency and rates\n\
         \x20 --mix SPEC             add=..,cancel=..,modify=..,aggressive=..\n\
         \x20 --seed N               seed of the order mix\n\
         \x20 --symbol ID[:MID]      instrument (repeatable; default: the config's)\n\
         \x20 --arrivals uniform|poisson\n\
         \x20 --wait yield|spin|sleep idle behaviour below 1 ms\n\
         \x20 --depth T --cross T --max-qty Q --max-live N --max-inflight N\n\
         \x20 --heartbeat-ms MS --connect-timeout S --drain-timeout S\n\
         \x20 --allow-reject NAMES   reject reasons that do not fail the run\n\
         \x20 --report-log FILE      CSV of every report received\n\
         \x20 --json FILE            write the JSON result\n\
         \x20 --quiet                print only errors\n\ndefaults:\n",
    );
    for (k, v) in Defaults::table() {
        s.push_str(&format!("  {k} = {v}\n"));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let (options, extras) = match Options::from_args(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("loadgen: error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match options.resolve().and_then(|s| loadgen::run(&s)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: error: {e}");
            return ExitCode::from(2);
        }
    };
    if !extras.quiet {
        println!("{}", report.summary());
    }
    if let Some(path) = &extras.json {
        if let Err(e) = std::fs::write(path, report.to_json() + "\n") {
            eprintln!("loadgen: error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
