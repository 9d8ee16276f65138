//! `server`: the venue on the wire. [`Server::start`] recovers the venue from its journal,
//! then runs it on five threads until [`Server::stop`] (with `pipeline.mode = "inline"`, one
//! thread runs gateway, engine and publisher in turn over the same rings: [`inline`]):
//!
//! ```text
//!  clients ──TCP──> gateway ──ring──> engine ──ring──> publisher ──TCP──> clients
//!                   (mio: accept,     (journal append,  (report streams,  ──UDP──> feed
//!                    read, decode,     then Venue::      send buffers,
//!                    timestamps,       apply)            datagrams,
//!                    key hashing)        │               retransmission)
//!                                        └──> snapshot thread (fdatasync + snapshot file)
//!  metrics thread: GET /metrics (Prometheus text)
//! ```
//!
//! ## Invariants
//!
//! * **One writer per socket**: the gateway only reads order-entry connections; the publisher
//!   alone writes them (the gateway hands it a duplicate of each socket at accept) and alone
//!   sends datagrams. Malformed-frame rejects and closes travel from the gateway to the
//!   publisher through the engine, so every connection sees one ordered stream.
//! * **Journal first**: the engine applies a command only after appending it to the journal,
//!   so no report, market-data message or retransmission can leave for a command that is not
//!   journaled. Under `fsync = always` the publisher also holds everything until the journal
//!   is durable past the command.
//! * **Nothing blocks the engine on a client**: the publisher never waits for a socket (a slow
//!   reader is disconnected when its queue exceeds `session.max_send_buffer`); the only
//!   back-pressure is a full ring, which slows the gateway and, through TCP flow control,
//!   the senders.
//! * **Deterministic restart**: session ids continue after the largest journaled one; the
//!   sessions still open in the recovered venue (their connections died with the previous
//!   process) get a journaled `Disconnect` before the venue serves, so cancel-on-disconnect
//!   replays exactly; report streams and feed channel numbers continue where they were
//!   (they are venue state), and the retransmission histories are refilled from the
//!   replayed tail.
//! * **Graceful stop** ([`Server::stop`]): the gateway stops accepting and reading, injects a
//!   `Disconnect` for every logged-on connection and drops its ring producer; the engine
//!   drains its ring and ends; the publisher drains, sends what is queued (up to 300 ms) and
//!   closes the connections; then the journal is flushed, a final snapshot written, and the
//!   state hash returned ([`StopSummary`]).
//!
//! ## Threads and waiting
//!
//! See [`wait`]: consumers spin briefly (`wait::SPIN_BUDGET`), then sleep (the engine parks,
//! the publisher and the gateway block in `epoll_wait`) with producers waking them only when
//! they announced a sleep. With two cores shared with client processes no thread spins for
//! more than a few microseconds without work. Each command on a quiet venue still wakes three
//! threads in turn; the inline pipeline ([`inline`]) wakes one.
//!
//! ## Cost
//!
//! Per order: a 64 KiB-batched `read` share, a decode and a SHA-free command build (keys are
//! hashed only for logons), one ring slot in each ring, one journal record (a copy into a
//! mapping and a CRC), `Venue::apply`, and one encoded frame per receiving session written
//! with batched `write`s. No allocation per message on any thread after warm-up, except the
//! growth of buffers to their peak.

pub mod engine;
pub mod gateway;
pub mod inline;
pub mod log;
pub mod metrics;
pub mod publisher;
pub mod recovery;
mod sockopt;
pub mod wait;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::config::{Config, ConfigError, FeedMode, FsyncMode, PipelineMode};
use crate::journal::{JournalError, SnapshotStore};
use crate::ring::{self, RingError};
use crate::venue::{Command, Outbound, Venue, VenueError};

use self::engine::{EngineExit, SnapshotCtl};
use self::log::{Log, Val};
use self::metrics::Metrics;
use self::publisher::{Gate, PubConfig, Publisher, Udp};
use self::recovery::{RecoveryInfo, ReplayObserver};
use self::wait::{Wake, Waker};

pub use self::recovery::{replay_journal, ReplayOptions, ReplaySummary};

/// Everything that can stop the server from starting or stopping cleanly.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The config is invalid.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    /// The venue refused the config or a snapshot.
    #[error("{0}")]
    Venue(#[from] VenueError),
    /// The journal or a snapshot file failed.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// A ring could not be built.
    #[error("{0}")]
    Ring(#[from] RingError),
    /// A socket, thread or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Recovery could not rebuild the venue (the message says why and where).
    #[error("recovery failed: {0}")]
    Recovery(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// Nanoseconds since the Unix epoch (the venue's clock; never panics).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A gateway event for the publisher, carried through the engine in order.
#[derive(Debug)]
pub enum Control {
    /// A new connection: the publisher's (write) handle of its socket.
    Connect {
        /// Its session id.
        session: u64,
        /// A duplicate of the accepted socket.
        stream: mio::net::TcpStream,
    },
    /// A frame that did not decode: send a `MALFORMED` reject, then close if asked.
    Malformed {
        /// The connection.
        session: u64,
        /// The frame's client order id if readable, else 0.
        client_order_id: u64,
        /// The frame's symbol id if readable, else 0.
        symbol_id: u32,
        /// Close the connection after the reject.
        close: bool,
    },
    /// The gateway is done with the connection: close it after what is queued.
    Close {
        /// The connection.
        session: u64,
    },
}

/// An item of the gateway -> engine ring.
#[derive(Debug)]
pub enum Inbound {
    /// To journal and apply.
    Command(Command),
    /// To pass to the publisher.
    Control(Control),
}

/// What the publisher receives.
#[derive(Debug)]
pub enum Item {
    /// An output of `Venue::apply`.
    Venue(Outbound),
    /// A gateway event.
    Control(Control),
}

/// An item of the engine -> publisher ring: `jseq` is the journal sequence number of the
/// command that produced it (for control items, the last one appended before it).
#[derive(Debug)]
pub struct Outgoing {
    /// Journal sequence number.
    pub jseq: u64,
    /// The item.
    pub item: Item,
}

/// Flags shared by every thread.
#[derive(Debug, Default)]
pub struct Shared {
    stop: AtomicBool,
    failed: AtomicBool,
    gateway_waker: OnceLock<Arc<mio::Waker>>,
}

impl Shared {
    /// Asks the gateway to stop (it wakes at once).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(w) = self.gateway_waker.get() {
            let _ = w.wake();
        }
    }

    /// Marks the server failed (the journal refused a record) and stops it.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.stop();
    }

    /// Whether a stop was asked.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Whether the server failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Options of [`Server::start`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The config file's text, copied to `<journal dir>/venue.toml` so that the journal can be
    /// replayed without naming the config (`tradecore replay --journal DIR`).
    pub config_text: Option<String>,
    /// Write JSON log lines on stderr.
    pub log: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            config_text: None,
            log: true,
        }
    }
}

/// What [`Server::stop`] returns.
#[derive(Clone, Debug)]
pub struct StopSummary {
    /// State hash of the venue at the end (64 hex digits), equal to a replay of the journal.
    pub state_hash: String,
    /// Last journal sequence number.
    pub last_seq: u64,
    /// The final snapshot (none when the journal is empty).
    pub snapshot: Option<PathBuf>,
    /// Resting orders at the end.
    pub live_orders: usize,
    /// Why the engine stopped early, if it did (journal failure).
    pub error: Option<String>,
    /// Time the stop took.
    pub elapsed: Duration,
}

struct Threads {
    /// `None` in the inline pipeline (the engine's thread runs the gateway).
    gateway: Option<JoinHandle<()>>,
    /// The engine's thread (in the inline pipeline, the one pipeline thread).
    engine: JoinHandle<EngineExit>,
    /// `None` in the inline pipeline (the engine's thread runs the publisher).
    publisher: Option<JoinHandle<()>>,
    snapshot: JoinHandle<()>,
    metrics: JoinHandle<()>,
    metrics_stop: Arc<AtomicBool>,
}

/// A running venue server (module doc). Dropping it stops it (and ignores the summary).
pub struct Server {
    order_entry: SocketAddr,
    metrics_addr: SocketAddr,
    feed: Option<SocketAddr>,
    journal_dir: PathBuf,
    recovery: RecoveryInfo,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    threads: Option<Threads>,
    config: Config,
    log: Log,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("order_entry", &self.order_entry)
            .field("metrics", &self.metrics_addr)
            .field("journal_dir", &self.journal_dir)
            .finish()
    }
}

struct PubObserver<'a> {
    cfg: &'a PubConfig,
    log: Log,
    publisher: Option<Publisher>,
}

impl ReplayObserver for PubObserver<'_> {
    fn start(&mut self, venue: &Venue) {
        self.publisher = Some(Publisher::new(self.cfg.clone(), venue, None, self.log));
    }
    fn output(&mut self, msg: &Outbound) {
        if let Some(p) = self.publisher.as_mut() {
            p.absorb(msg);
        }
    }
}

fn feed_socket(config: &Config) -> Result<Option<Udp>, ServerError> {
    let f = &config.feed;
    if !f.enabled {
        return Ok(None);
    }
    let socket = UdpSocket::bind((f.interface, 0)).map_err(io_err(format!(
        "cannot bind the feed socket on {}",
        f.interface
    )))?;
    socket
        .set_nonblocking(true)
        .map_err(io_err("feed socket"))?;
    if f.mode == FeedMode::Multicast {
        socket
            .set_multicast_ttl_v4(u32::from(f.ttl))
            .map_err(io_err("feed socket: IP_MULTICAST_TTL"))?;
        socket
            .set_multicast_loop_v4(true)
            .map_err(io_err("feed socket: IP_MULTICAST_LOOP"))?;
        sockopt::set_multicast_if_v4(&socket, f.interface)
            .map_err(io_err("feed socket: IP_MULTICAST_IF"))?;
    }
    Ok(Some(Udp {
        socket,
        dest: f.address,
    }))
}

impl Server {
    /// Loads `path`, copies it into the journal directory and starts the server.
    pub fn start_from_path(path: impl AsRef<Path>, log: bool) -> Result<Server, ServerError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| {
            ServerError::Config(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            })
        })?;
        let config = Config::load(path)?;
        Server::start(
            config,
            ServerOptions {
                config_text: Some(text),
                log,
            },
        )
    }

    /// Binds the listeners, recovers the venue from the journal, and starts the threads
    /// (module doc). Listen addresses may use port 0; the bound ones are returned by
    /// [`Server::order_entry_addr`] and [`Server::metrics_addr`].
    pub fn start(config: Config, options: ServerOptions) -> Result<Server, ServerError> {
        config.validate()?;
        let log = Log {
            enabled: options.log,
        };
        let dir = config.journal.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(format!(
            "cannot create journal directory {}",
            dir.display()
        )))?;
        if let Some(text) = &options.config_text {
            let tmp = dir.join("venue.toml.tmp");
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, dir.join("venue.toml")))
                .map_err(io_err(format!(
                    "cannot copy the config into {}",
                    dir.display()
                )))?;
        }
        let oe = TcpListener::bind(config.listen.order_entry).map_err(io_err(format!(
            "cannot listen on {} (listen.order_entry)",
            config.listen.order_entry
        )))?;
        let ml = TcpListener::bind(config.listen.metrics).map_err(io_err(format!(
            "cannot listen on {} (listen.metrics)",
            config.listen.metrics
        )))?;
        let order_entry = oe.local_addr().map_err(io_err("order-entry listener"))?;
        let metrics_addr = ml.local_addr().map_err(io_err("metrics listener"))?;
        oe.set_nonblocking(true)
            .map_err(io_err("order-entry listener"))?;
        let udp = feed_socket(&config)?;
        let feed = udp.as_ref().map(|u| u.dest);

        let s = &config.session;
        let pub_cfg = PubConfig {
            max_send_buffer: s.max_send_buffer as usize,
            report_history: s.report_history as usize,
            max_retransmit: s.max_retransmit,
            md_channel: config.feed.market_data_channel,
            report_channel: config.feed.report_channel,
            feed_history: config.feed.history as usize,
            feed_heartbeat: Duration::from_millis(u64::from(config.feed.heartbeat_ms)),
        };
        let mut obs = PubObserver {
            cfg: &pub_cfg,
            log,
            publisher: None,
        };
        let (mut venue, mut journal, mut recovery) = recovery::recover(&config, &mut obs)?;
        let mut publisher = obs
            .publisher
            .take()
            .ok_or_else(|| ServerError::Recovery("replay never started".into()))?;
        log.info(
            "recovered",
            &[
                ("journal", Val::S(&dir.display().to_string())),
                (
                    "snapshot_seq",
                    Val::U(recovery.snapshot.as_ref().map_or(0, |s| s.0)),
                ),
                ("replayed", Val::U(recovery.replayed)),
                ("next_seq", Val::U(recovery.next_seq)),
                ("ms", Val::F(recovery.elapsed.as_secs_f64() * 1e3)),
                ("state_hash", Val::S(&venue.state_hash_hex())),
            ],
        );
        for r in &recovery.rejected_snapshots {
            log.warn("snapshot_rejected", &[("detail", Val::S(r))]);
        }
        if let Some(d) = &recovery.damage {
            log.warn("journal_tail_cut", &[("detail", Val::S(d))]);
        }

        // Sessions left open by the previous process: their connections are gone.
        let ts = recovery.max_ts.max(now_ns());
        let mut out = Vec::new();
        let mut buf = [0u8; crate::venue::MAX_COMMAND_LEN];
        for (session, account) in venue.sessions() {
            let cmd = Command::disconnect(session, account, ts);
            let n = cmd.encode_into(&mut buf)?;
            journal.append(&buf[..n])?;
            out.clear();
            venue.apply(&cmd, &mut out);
            for o in &out {
                publisher.absorb(o);
            }
            log.info(
                "stale_session_closed",
                &[
                    ("session", Val::U(session)),
                    ("account", Val::U(account.into())),
                ],
            );
        }
        recovery.next_seq = journal.next_seq();
        recovery.max_ts = ts;
        let first_session = venue.next_session_id();
        let md_next = publisher.md_next_seq();
        if md_next != venue.md_messages() + 1 {
            return Err(ServerError::Recovery(format!(
                "market-data numbering disagrees after replay ({md_next} vs {})",
                venue.md_messages() + 1
            )));
        }
        let publisher = {
            let mut p = publisher;
            p.set_udp(udp);
            p
        };

        let cap = config.pipeline.ring_capacity as usize;
        let (in_tx, in_rx) = ring::channel::<Inbound>(cap)?;
        let (out_tx, out_rx) = ring::channel::<Outgoing>(cap)?;
        let metrics = Arc::new(Metrics::new());
        let _ = metrics.rings.set((in_tx.gauge(), out_tx.gauge()));
        let shared = Arc::new(Shared::default());

        let gw_poll = mio::Poll::new().map_err(io_err("epoll"))?;
        let gw_waker = Arc::new(
            mio::Waker::new(gw_poll.registry(), gateway::WAKER).map_err(io_err("eventfd"))?,
        );
        let _ = shared.gateway_waker.set(gw_waker);
        let mut listener = mio::net::TcpListener::from_std(oe);
        gw_poll
            .registry()
            .register(&mut listener, gateway::LISTENER, mio::Interest::READABLE)
            .map_err(io_err("epoll"))?;
        let pub_poll = mio::Poll::new().map_err(io_err("epoll"))?;
        let pub_waker = Arc::new(
            mio::Waker::new(pub_poll.registry(), publisher::WAKER_TOKEN)
                .map_err(io_err("eventfd"))?,
        );
        let wake_pub = Wake::new(Waker::Mio(pub_waker));
        let wake_engine = Wake::parking();
        let gate = if config.journal.fsync == FsyncMode::Always {
            // The journal's sync thread makes records durable while the engine goes on
            // (group commit); it wakes the publisher when the durable seq advances.
            let durable = journal.durable();
            let w = Arc::clone(&wake_pub);
            journal.set_durable_waker(Arc::new(move |_| w.notify()));
            Gate::Durable(Box::new(move || durable.get()))
        } else {
            Gate::Open
        };

        let (snap_tx, snap_rx) = std::sync::mpsc::sync_channel(1);
        let busy = Arc::new(AtomicBool::new(false));
        let truncate_before = Arc::new(AtomicU64::new(0));
        let keep = config.journal.snapshots_kept as usize;
        let snapshot = {
            let (dir, busy, tb, m) = (
                dir.clone(),
                Arc::clone(&busy),
                Arc::clone(&truncate_before),
                Arc::clone(&metrics),
            );
            spawn("tc-snapshot", move || {
                engine::snapshot_thread(snap_rx, dir, keep, busy, tb, m, log);
            })?
        };
        let eng = engine::Engine {
            venue,
            journal,
            tx: out_tx,
            wake_self: Arc::clone(&wake_engine),
            wake_pub: Arc::clone(&wake_pub),
            metrics: Arc::clone(&metrics),
            shared: Arc::clone(&shared),
            snapshots: SnapshotCtl {
                every: config.journal.snapshot_every,
                tx: snap_tx,
                busy,
                truncate_before,
            },
            log,
        };
        let gw = gateway::Gateway {
            poll: gw_poll,
            listener,
            tx: in_tx,
            wake_engine: Arc::clone(&wake_engine),
            shared: Arc::clone(&shared),
            metrics: Arc::clone(&metrics),
            log,
            cfg: gateway::GatewayConfig {
                first_session,
                ts_floor: ts,
                max_malformed: s.max_malformed,
                idle_timeout: Duration::from_millis(u64::from(s.idle_timeout_ms)),
                max_connections: s.max_sessions as usize + 64,
            },
        };
        let (gateway, engine, publisher) = match config.pipeline.mode {
            PipelineMode::Threads => {
                let engine = spawn("tc-engine", move || {
                    eng.wake_self.register_current();
                    engine::run(eng, in_rx)
                })?;
                let publisher = {
                    let m = Arc::clone(&metrics);
                    let w = Arc::clone(&wake_pub);
                    spawn("tc-publisher", move || {
                        publisher::run(publisher, out_rx, pub_poll, w, gate, m);
                    })?
                };
                let gateway = spawn("tc-gateway", move || gateway::run(gw))?;
                (Some(gateway), engine, Some(publisher))
            }
            PipelineMode::Inline => {
                let pipeline = inline::Inline::new(
                    gateway::Looper::inline(gw),
                    engine::Looper::inline(eng),
                    publisher::Looper::new(publisher, pub_poll, gate, Arc::clone(&metrics)),
                    in_rx,
                    out_rx,
                    Arc::clone(&wake_pub),
                    Duration::from_micros(u64::from(config.pipeline.spin_us)),
                )?;
                (None, spawn("tc-venue", move || pipeline.run())?, None)
            }
        };
        let metrics_stop = Arc::new(AtomicBool::new(false));
        let metrics_thread = {
            let (m, stop) = (Arc::clone(&metrics), Arc::clone(&metrics_stop));
            spawn("tc-metrics", move || metrics::serve_http(ml, m, stop))?
        };
        log.info(
            "listening",
            &[
                ("order_entry", Val::S(&order_entry.to_string())),
                ("metrics", Val::S(&metrics_addr.to_string())),
                (
                    "feed",
                    Val::S(&feed.map_or_else(|| "off".to_owned(), |a| a.to_string())),
                ),
                ("first_session", Val::U(first_session)),
            ],
        );
        Ok(Server {
            order_entry,
            metrics_addr,
            feed,
            journal_dir: dir,
            recovery,
            shared,
            metrics,
            threads: Some(Threads {
                gateway,
                engine,
                publisher,
                snapshot,
                metrics: metrics_thread,
                metrics_stop,
            }),
            config,
            log,
        })
    }

    /// The bound order-entry address.
    pub fn order_entry_addr(&self) -> SocketAddr {
        self.order_entry
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Where feed datagrams go (`None` when feeds are disabled).
    pub fn feed_addr(&self) -> Option<SocketAddr> {
        self.feed
    }

    /// The journal directory.
    pub fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }

    /// What start-up recovery found.
    pub fn recovery(&self) -> &RecoveryInfo {
        &self.recovery
    }

    /// Every counter of the metrics (a few ms stale).
    pub fn stats(&self) -> Vec<(String, u64)> {
        self.metrics.values()
    }

    /// The Prometheus text the metrics endpoint serves.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Whether the server stopped itself after a journal failure.
    pub fn failed(&self) -> bool {
        self.shared.failed()
    }

    /// Graceful stop (module doc): returns the final state hash.
    pub fn stop(mut self) -> Result<StopSummary, ServerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<StopSummary, ServerError> {
        let t0 = Instant::now();
        let Some(t) = self.threads.take() else {
            return Err(ServerError::Recovery(
                "the server was already stopped".into(),
            ));
        };
        self.shared.stop();
        let joined = |what: &str| ServerError::Recovery(format!("the {what} thread panicked"));
        if let Some(g) = t.gateway {
            g.join().map_err(|_| joined("gateway"))?;
        }
        let exit = t.engine.join().map_err(|_| joined("engine"))?;
        if let Some(p) = t.publisher {
            p.join().map_err(|_| joined("publisher"))?;
        }
        t.snapshot.join().map_err(|_| joined("snapshot"))?;
        let EngineExit {
            venue,
            mut journal,
            error,
            last_seq,
        } = exit;
        let mut snapshot = None;
        if error.is_none() {
            journal.flush()?;
            if last_seq > 0 {
                let store = SnapshotStore::new(
                    &self.journal_dir,
                    self.config.journal.snapshots_kept as usize,
                )?;
                let w = store.write(last_seq, &venue.snapshot())?;
                journal.truncate_before(w.oldest_kept_seq + 1)?;
                snapshot = Some(w.path);
            }
            journal.close()?;
        }
        t.metrics_stop.store(true, Ordering::Release);
        t.metrics.join().map_err(|_| joined("metrics"))?;
        let summary = StopSummary {
            state_hash: venue.state_hash_hex(),
            last_seq,
            snapshot,
            live_orders: venue.live_orders(),
            error,
            elapsed: t0.elapsed(),
        };
        self.log.info(
            "stopped",
            &[
                ("state_hash", Val::S(&summary.state_hash)),
                ("last_seq", Val::U(last_seq)),
                ("ms", Val::F(summary.elapsed.as_secs_f64() * 1e3)),
            ],
        );
        Ok(summary)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.threads.is_some() {
            let _ = self.shutdown();
        }
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, ServerError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(io_err(format!("cannot start thread {name}")))
}
