//! `Venue::apply` throughput benchmark (harness = false; prints figures, asserts only
//! correctness).
//!
//! The venue alone, as the engine thread drives it, without journal, rings or sockets: a
//! realistic mixed command stream from `VENUE_ACCOUNTS` (default 8) logged-on accounts on two
//! instruments with `book_capacity = 200000` each (the example config's), the order maps
//! therefore sized as in production. The flow: passive GTC adds 1..60 ticks from a drifting
//! mid (a random walk), cancels of a random live order of the account, modifies (new price
//! near the mid, new quantity), and aggressive IOC orders up to 4 ticks through the mid that
//! trade with the makers of other accounts (STP cancel-newest within an account): 20%
//! cancels, 5% modifies, 65% passive adds, 10% aggressive orders. An account over
//! its share of `VENUE_LIVE` (default 100,000) always cancels; with fills and cancels the
//! books settle at 55,000 to 75,000 resting orders. Client order ids are sequential per account; random cancels leave a long tail
//! of old orders resting far from the mid, as real books do.
//!
//! The run is `VENUE_COMMANDS` (default 10,000,000) commands in windows of `VENUE_WINDOW`
//! (default 1,000,000). Each window is generated first (untimed), then applied (timed), so
//! the per-window figures show whether `apply` slows down as the run gets longer (hash-map
//! tombstones, cold caches). It prints each window's throughput, the median of the windows
//! after the first (which includes filling the book), the last-to-second ratio, and, as
//! correctness fingerprints that two builds of the venue must agree on, the number of
//! outputs, a digest of every report and the final state hash.
//!
//! Like the engine thread, the loop gives the venue its lookahead hints (`Venue::prefetch`
//! four commands ahead, `Venue::prefetch_order` two ahead); `VENUE_LOOKAHEAD=0` turns them
//! off.
//!
//! Run: `cargo bench -p tradecore-engine --bench venue`. For an instruction count that the
//! machine's load does not disturb: `VENUE_COMMANDS=2000000 valgrind --tool=callgrind
//! target/release/deps/venue-<hash>` (cargo prints the path).

use std::time::{Duration, Instant};

use tradecore_book::{OrderType, Side, Stp, TimeInForce};
use tradecore_engine::codec::{Cancel, Modify, NewOrder};
use tradecore_engine::config::{api_key_sha256, to_hex, Config};
use tradecore_engine::venue::{Command, Input, Outbound, Venue};

const SYMBOLS: u32 = 2;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(accounts: u32) -> Config {
    let accounts: String = (1..=accounts)
        .map(|a| {
            format!(
                "[[account]]\naccount = {a}\napi_key_sha256 = \"{}\"\n\n",
                to_hex(&api_key_sha256(&format!("key-{a}")))
            )
        })
        .collect();
    let instruments: String = (1..=SYMBOLS)
        .map(|s| {
            format!(
                "[[instrument]]\nsymbol_id = {s}\nsymbol = \"SYM{s}\"\ntick_size = \"0.01\"\n\
                 lot_size = \"1\"\nprice_band = {{ lo_ticks = 1, hi_ticks = 10000000 }}\n\
                 max_order_qty = 1000000\nbook_capacity = 200000\n\n"
            )
        })
        .collect();
    let text = format!(
        "[session]\nrate_limit_per_sec = 1000000000\nrate_limit_burst = 1000000000\n\
         max_sessions = 64\n\n[journal]\ndir = \"/nonexistent-venue-bench\"\nfsync = \"none\"\n\n\
         {instruments}{accounts}"
    );
    Config::from_toml_str(&text).expect("config")
}

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The order flow: per (account, symbol) the client ids that may still be live. They are
/// re-read from the venue before each window (untimed); within a window fills are not fed
/// back, so a few cancels and modifies name filled orders and get `UNKNOWN_ORDER`, as under
/// real load.
struct Flow {
    rng: Rng,
    accounts: u32,
    live_cap: usize,
    mid: [i64; SYMBOLS as usize],
    next_coid: Vec<u64>,
    live: Vec<Vec<u64>>,
    ts: u64,
}

impl Flow {
    fn new(accounts: u32, live_target: u64) -> Self {
        let lists = (accounts * SYMBOLS) as usize;
        Flow {
            rng: Rng(7),
            accounts,
            live_cap: (live_target as usize / lists).max(1),
            mid: [1_000_000; SYMBOLS as usize],
            next_coid: vec![1; accounts as usize + 1],
            live: vec![Vec::new(); lists],
            ts: 1_700_000_000_000_000_000,
        }
    }

    /// Re-reads the live client ids of every account from the venue.
    fn resync(&mut self, v: &Venue) {
        for l in &mut self.live {
            l.clear();
        }
        for a in 1..=self.accounts {
            for o in v.account_orders(a) {
                self.live[((a - 1) * SYMBOLS + o.symbol_id - 1) as usize].push(o.client_order_id);
            }
        }
    }

    fn next(&mut self) -> Command {
        self.ts += 1_000;
        let account = 1 + self.rng.below(u64::from(self.accounts)) as u32;
        let symbol = 1 + self.rng.below(u64::from(SYMBOLS)) as u32;
        let k = ((account - 1) * SYMBOLS + symbol - 1) as usize;
        let m = &mut self.mid[(symbol - 1) as usize];
        // The mid moves one tick on one command in 32: passive orders left on the wrong
        // side of it get taken by the next orders there, as in a real book.
        match self.rng.below(64) {
            0 => *m -= 1,
            1 => *m += 1,
            _ => {}
        }
        let mid = *m;
        let r = self.rng.below(100);
        let side = if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let passive = |off: i64| match side {
            Side::Buy => mid - off,
            Side::Sell => mid + off,
        };
        let live = &mut self.live[k];
        let input = if !live.is_empty() && (r < 20 || live.len() > self.live_cap) {
            let i = self.rng.below(live.len() as u64) as usize;
            Input::Cancel(Cancel {
                client_order_id: live.swap_remove(i),
                symbol_id: symbol,
            })
        } else if !live.is_empty() && r < 25 {
            let i = self.rng.below(live.len() as u64) as usize;
            Input::Modify(Modify {
                client_order_id: live[i],
                symbol_id: symbol,
                new_price: passive(1 + self.rng.below(40) as i64),
                new_qty: 1 + self.rng.below(20),
            })
        } else {
            let aggressive = r >= 90;
            let coid = self.next_coid[account as usize];
            self.next_coid[account as usize] += 1;
            if !aggressive {
                live.push(coid);
            }
            Input::NewOrder(NewOrder {
                client_order_id: coid,
                symbol_id: symbol,
                side,
                order_type: OrderType::Limit,
                tif: if aggressive {
                    TimeInForce::Ioc
                } else {
                    TimeInForce::Gtc
                },
                post_only: false,
                stp: Stp::CancelNewest,
                price: if aggressive {
                    passive(-(self.rng.below(5) as i64))
                } else {
                    passive(1 + self.rng.below(60) as i64)
                },
                qty: 1 + self.rng.below(20),
            })
        };
        Command {
            session: u64::from(account),
            account,
            ts_ns: self.ts,
            input,
        }
    }
}

/// FNV-1a over the fields of every sequenced report: two builds of the venue fed the same
/// stream must print the same digest.
fn digest(h: &mut u64, out: &[Outbound]) {
    for o in out {
        if let Outbound::Report {
            session,
            account,
            report: r,
        } = o
        {
            for x in [
                *session,
                u64::from(*account),
                r.seq,
                r.client_order_id,
                r.order_id,
                r.kind as u64,
                r.reason as u64,
                r.price as u64,
                r.qty,
                r.leaves,
            ] {
                *h = (*h ^ x).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches` probing
    }
    let commands = env_u64("VENUE_COMMANDS", 10_000_000);
    let window = env_u64("VENUE_WINDOW", 1_000_000).clamp(1, commands.max(1));
    let accounts = env_u64("VENUE_ACCOUNTS", 8).clamp(1, 64) as u32;
    let live_target = env_u64("VENUE_LIVE", 100_000);
    let lookahead = env_u64("VENUE_LOOKAHEAD", 1) != 0;
    let cfg = config(accounts);
    println!(
        "== Venue::apply: {commands} commands in windows of {window}, {accounts} accounts, \
         2 instruments x 200k capacity, ~{live_target} resting orders, lookahead {} ==",
        if lookahead { "on" } else { "off" }
    );
    let mut v = Venue::new(&cfg).expect("venue");
    let mut out: Vec<Outbound> = Vec::with_capacity(1024);
    for a in 1..=accounts {
        v.apply(
            &Command {
                session: u64::from(a),
                account: 0,
                ts_ns: 1_700_000_000_000_000_000,
                input: Input::Logon {
                    account: a,
                    key_sha256: api_key_sha256(&format!("key-{a}")),
                    heartbeat_ms: 1000,
                },
            },
            &mut out,
        );
    }
    assert_eq!(
        v.sessions().len(),
        accounts as usize,
        "every logon accepted"
    );
    let mut flow = Flow::new(accounts, live_target);
    let mut batch: Vec<Command> = Vec::with_capacity(window as usize);
    let (mut outputs, mut dig) = (0u64, 0xcbf2_9ce4_8422_2325u64);
    let mut rates = Vec::new();
    let mut done = 0u64;
    let mut total = Duration::ZERO;
    while done < commands {
        let n = window.min(commands - done);
        flow.resync(&v);
        batch.clear();
        batch.extend((0..n).map(|_| flow.next()));
        let t = Instant::now();
        for (i, cmd) in batch.iter().enumerate() {
            if lookahead {
                // The engine thread's lookahead over its ring batch (server::engine).
                if let Some(c) = batch.get(i + 4) {
                    v.prefetch(c);
                }
                if let Some(c) = batch.get(i + 2) {
                    v.prefetch_order(c);
                }
            }
            out.clear();
            v.apply(cmd, &mut out);
            outputs += out.len() as u64;
            digest(&mut dig, &out);
        }
        let dt = t.elapsed();
        total += dt;
        done += n;
        let rate = n as f64 / dt.as_secs_f64() / 1e6;
        rates.push(rate);
        println!(
            "  commands {:>10}..{:<10} {:>6.3} M/s  {:>5.0} ns/command  {:>7} live orders",
            done - n,
            done,
            rate,
            dt.as_nanos() as f64 / n as f64,
            v.live_orders()
        );
    }
    let mut steady: Vec<f64> = rates.iter().skip(1).copied().collect();
    if steady.is_empty() {
        steady = rates.clone();
    }
    steady.sort_by(f64::total_cmp);
    let median = steady[steady.len() / 2];
    let ratio =
        rates.last().copied().unwrap_or(0.0) / rates.get(1).or(rates.first()).unwrap_or(&1.0);
    println!(
        "apply: median {median:.3} M commands/s over windows 2..{} ({:.0} ns/command), \
         overall {:.3} M/s, last/second window {ratio:.2}",
        rates.len(),
        1e3 / median,
        commands as f64 / total.as_secs_f64() / 1e6
    );
    v.check_invariants()
        .expect("venue invariants after the run");
    println!(
        "fingerprint: {outputs} outputs, report digest {dig:016x}, next order id {}, state hash {}",
        v.next_order_id(),
        v.state_hash_hex()
    );
}
