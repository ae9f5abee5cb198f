//! The feed stage: messages in (generated, a file, or standard input), parsed ticks out.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use arrayvec::ArrayString;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use data::generate::MarketGenerator;
use infrastructure::memory::PoolGuard;
use infrastructure::types::Tick;
use serde::Serialize;

use super::{Clock, Idle};
use crate::config::{Config, InputFormat, MALFORMED_SAMPLES, Source};
use crate::{Progress, StopReason};

/// An input line that did not parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// What was wrong, with the byte offset (its first [`SAMPLE_BYTES`] bytes, `…` at
    /// the end where cut): inline, so a sample taken in the steady state allocates
    /// nothing.
    #[serde(serialize_with = "as_str")]
    pub error: ArrayString<SAMPLE_BYTES>,
}

/// The longest error a sample keeps.
pub const SAMPLE_BYTES: usize = 160;

fn as_str<S: serde::Serializer>(
    text: &ArrayString<SAMPLE_BYTES>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

/// `error`, written into an inline string; cut at a character boundary with `…` if
/// it does not fit.
fn sample_of(error: &dyn std::fmt::Display) -> ArrayString<SAMPLE_BYTES> {
    /// Writes what fits, and remembers that something did not.
    struct Cut {
        text: ArrayString<SAMPLE_BYTES>,
        cut: bool,
    }
    impl std::fmt::Write for Cut {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.cut || self.text.try_push(c).is_err() {
                    self.cut = true;
                    return Ok(());
                }
            }
            Ok(())
        }
    }
    let mut out = Cut {
        text: ArrayString::new(),
        cut: false,
    };
    // Writing to `Cut` cannot fail; a `Display` that fails leaves what it wrote.
    let _ = std::fmt::write(&mut out, format_args!("{error}"));
    if out.cut {
        // Room for the `…` (3 bytes), at a character boundary.
        let mut keep = SAMPLE_BYTES - '…'.len_utf8();
        while !out.text.is_char_boundary(keep) {
            keep -= 1;
        }
        out.text.truncate(keep);
        out.text.push('…');
    }
    out.text
}

/// Reasons a line is malformed: the parser's ([`data::parse::REASONS`] but its last,
/// `not_a_tick`, which the feed counts as skipped) and the feed's own `line_too_long`.
pub const MALFORMED_REASONS: [&str; data::parse::REASONS.len()] = {
    let mut out = [""; data::parse::REASONS.len()];
    let mut i = 0;
    while i + 1 < out.len() {
        out[i] = data::parse::REASONS[i];
        i += 1;
    }
    out[i] = "line_too_long";
    out
};

/// Lines by outcome: ticks by format, skipped messages by kind, malformed lines by
/// reason (each in the order of `TickFormat::ALL`, `SkipKind::ALL` and
/// [`MALFORMED_REASONS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Ticks, per [`data::parse::TickFormat::ALL`].
    pub ticks: [u64; data::parse::TickFormat::ALL.len()],
    /// Messages that are not ticks, per [`data::parse::SkipKind::ALL`].
    pub skipped: [u64; data::parse::SkipKind::ALL.len()],
    /// Malformed lines, per [`MALFORMED_REASONS`].
    pub malformed: [u64; MALFORMED_REASONS.len()],
    /// Blank lines (white space only), skipped without a message.
    pub blank: u64,
    /// A historical CSV file's header row.
    pub header: u64,
}

impl Outcomes {
    fn malformed(&mut self, reason: &str) {
        // Every reason the parser gives is in the list (a unit test checks it); an
        // unknown one would count under the first, never be lost.
        let at = MALFORMED_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.malformed[at] += 1;
    }
}

/// What the feed did.
#[derive(Debug, Default)]
pub struct FeedFigures {
    /// Input lines read (generated messages count as lines).
    pub lines: u64,
    /// Ticks parsed and sent on.
    pub ticks: u64,
    /// Messages recognised as not ticks, skipped.
    pub skipped: u64,
    /// Lines that failed to parse.
    pub malformed: u64,
    /// The lines by outcome.
    pub outcomes: Outcomes,
    /// The first [`MALFORMED_SAMPLES`] of them (room for all made at start).
    pub samples: Vec<MalformedLine>,
    /// Gaps and silences in the symbols' streams (`data::health`).
    pub health: data::health::HealthCounts,
    /// Ticks dated far ahead of the market clock that the next tick did not confirm
    /// (`data::health::MarketClock`).
    pub clock_outliers: u64,
    /// What the input was read as (`json`, or the historical file's kind), once its
    /// first line is read.
    pub format: Option<&'static str>,
    /// Why the feed stopped before the end of its source, if it did.
    pub stopped: Option<StopReason>,
    /// How the feed kept to its schedule, when it had one (`--rate`, or a live
    /// source's receive times).
    pub schedule: Option<Schedule>,
    /// Time spent generating the messages, on the critical thread (a generated run;
    /// `None` for any other source).
    pub generator_ns: Option<u64>,
}

/// How the feed kept to its schedule. A paced message's latency is measured from when
/// it was due, not from when the feed got round to reading it: a stall that delays
/// the reads after it then shows in their latencies, as it would for messages that
/// arrive on a network while the process is stalled (coordinated omission).
#[derive(Debug, Default)]
pub struct Schedule {
    /// Per message: when the feed read it, less when it was due. What stamping each
    /// message at its read would have left out of every latency.
    pub lateness: analysis::NanosHistogram,
    /// Per wait for a message that was not yet due, if the wait yielded or spun: the
    /// longest the feed thread was away between two looks at the clock a yield or a
    /// spin apart (sleeps, for waits over 200 µs, are not counted: the OS wakes a sleeper
    /// late by design). The host's hiccups as the critical thread met them, measured
    /// without a thread of its own (jHiccup's idea).
    pub hiccups: analysis::NanosHistogram,
    /// The same hiccups, each also counted for every message due during it, one
    /// interval of the schedule apart ([`analysis::NanosHistogram::record_expected`]):
    /// the hiccups' share of the messages, comparable with latencies measured from
    /// due times (a stall of 1 ms at 100,000 messages a second makes 100 late).
    pub hiccups_per_message: analysis::NanosHistogram,
}

impl FeedFigures {
    fn malformed(
        &mut self,
        line: u64,
        reason: &str,
        error: &dyn std::fmt::Display,
        progress: &Progress,
    ) {
        self.malformed += 1;
        self.outcomes.malformed(reason);
        progress.count_malformed();
        tracing::debug!(line, %error, "malformed market-data line");
        if self.samples.len() < MALFORMED_SAMPLES {
            self.samples.push(MalformedLine {
                line,
                error: sample_of(error),
            });
        }
    }
}

/// How the feed reads an input's lines.
enum Decoder {
    /// Stream messages.
    Json,
    /// A historical CSV file's rows.
    Csv(data::historical::RowParser),
}

impl Decoder {
    /// The decoder for an input of `format` whose first line (not blank) is `first`,
    /// and whether that line is a header to skip.
    ///
    /// # Errors
    /// CSV rows whose symbol is neither given nor in the file name, or a first line
    /// that is not the CSV kind `format` names.
    fn choose(
        format: InputFormat,
        named: Option<data::historical::Kind>,
        symbol: Option<&str>,
        first: &[u8],
        name: &str,
    ) -> Result<(Decoder, bool)> {
        use data::historical::{Layout, RowParser};
        let as_kind = |kind: data::historical::Kind| {
            Layout::detect_as(kind, first).ok_or_else(|| {
                anyhow::anyhow!(
                    "{name}: the first line is not a row or header of Binance's historical {} files",
                    kind.name()
                )
            })
        };
        let layout = match (format, named) {
            (InputFormat::Json, _) => return Ok((Decoder::Json, false)),
            (InputFormat::Auto, _) if first.starts_with(b"{") => return Ok((Decoder::Json, false)),
            // The file name says what it holds: its first row only says how.
            (InputFormat::Auto, Some(kind)) | (InputFormat::Csv(kind), _) => as_kind(kind)?,
            (InputFormat::Auto, None) => match Layout::detect(first) {
                Some(layout) => layout,
                None => return Ok((Decoder::Json, false)),
            },
        };
        let Some(symbol) = symbol else {
            anyhow::bail!(
                "{name} holds historical {} rows, which do not name their symbol, and its file name does not either (BTCUSDT-{}-2024-01-01.csv): give it with --symbol",
                layout.kind.name(),
                layout.kind.name()
            );
        };
        let rows = RowParser::new(layout, symbol)
            .map_err(|e| anyhow::anyhow!("the symbol {symbol:?} of {name}: {}", e.kind))?;
        Ok((Decoder::Csv(rows), layout.header))
    }

    fn name(&self) -> &'static str {
        match self {
            Decoder::Json => "json",
            Decoder::Csv(rows) => rows.layout().kind.name(),
        }
    }
}

/// A source of lines, with what it has read ahead in view.
pub(crate) type LineReader = BufReader<Box<dyn LineSource>>;

/// What a line reader reads from.
pub(crate) trait LineSource: Read + Send {
    /// Whether a read now would return without waiting for the source's writer (a
    /// regular file's reads always do).
    fn ready(&self) -> bool {
        true
    }
}

impl LineSource for File {}

/// A source, opened: the feed thread reads it.
pub(crate) enum Input {
    /// The seeded generator.
    Generated { seed: u64, ticks: u64 },
    /// Lines from a reader.
    Lines {
        reader: LineReader,
        name: String,
        limit: Option<u64>,
        /// The longest line accepted, a stamp included (the message's own limit plus
        /// [`STAMP_BYTES`] for a stamped input).
        max_line_bytes: usize,
        /// How to read its lines, and the symbol and kind its file name gives (for
        /// CSV rows).
        format: InputFormat,
        /// Whether each line starts with its receive time and a space (a live
        /// source's, `super::live`).
        stamped: bool,
        symbol: Option<String>,
        named: Option<data::historical::Kind>,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Generated { seed, ticks } => f
                .debug_struct("Generated")
                .field("seed", seed)
                .field("ticks", ticks)
                .finish(),
            Input::Lines { name, limit, .. } => f
                .debug_struct("Lines")
                .field("name", name)
                .field("limit", limit)
                .finish_non_exhaustive(),
        }
    }
}

impl Input {
    /// Opens `source`, and says how many messages it can hold at most (for the
    /// window rows reserved up front): the generator's count or the `--ticks` limit;
    /// `None` for a file or standard input without a limit (a file may grow).
    pub(crate) fn open(
        config: &Config,
        progress: &Arc<Progress>,
        clock: Clock,
    ) -> Result<(Input, Option<u64>)> {
        let max_line_bytes = config.max_line_bytes;
        let format = config.input_format;
        // The symbol of CSV rows: given, or in a Binance file name (the first of
        // `names` that is one); and the kind the name says.
        fn named(names: &[Option<&str>]) -> Option<(String, data::historical::Kind)> {
            names
                .iter()
                .flatten()
                .find_map(|n| data::historical::symbol_of_file(n))
                .map(|(symbol, kind)| (symbol.to_owned(), kind))
        }
        let symbol = |names: &[Option<&str>]| {
            config
                .symbol
                .clone()
                .or_else(|| named(names).map(|(symbol, _)| symbol))
        };
        let kind = |names: &[Option<&str>]| named(names).map(|(_, kind)| kind);
        Ok(match &config.source {
            Source::Generated { seed, ticks } => (
                Input::Generated {
                    seed: *seed,
                    ticks: *ticks,
                },
                Some(*ticks),
            ),
            Source::File { path, limit }
                if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("zip")) =>
            {
                let (stream, entry) = super::unzip::open(path)?;
                let name = format!("{} ({entry})", path.display());
                let names = [
                    Some(entry.as_str()),
                    path.file_name().and_then(|n| n.to_str()),
                ];
                (
                    Input::Lines {
                        reader: BufReader::with_capacity(
                            CHUNK,
                            Box::new(ThreadedReader::start(stream, Arc::clone(progress))?),
                        ),
                        name,
                        limit: *limit,
                        max_line_bytes,
                        format,
                        stamped: false,
                        symbol: symbol(&names),
                        named: kind(&names),
                    },
                    *limit,
                )
            }
            Source::File { path, limit } => {
                let file =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                let name = path.display().to_string();
                let metadata = file
                    .metadata()
                    .with_context(|| format!("reading the metadata of {name}"))?;
                if metadata.is_dir() {
                    anyhow::bail!("{name} is a directory, not a file of messages");
                }
                // A regular file is read on the feed thread: a read never waits for
                // long. Anything else (a pipe, a FIFO, `/dev/stdin`, a device) may block
                // for ever, so it gets a reader thread, as standard input does.
                let reader: LineReader = if metadata.is_file() {
                    BufReader::with_capacity(CHUNK, Box::new(file) as Box<dyn LineSource>)
                } else {
                    BufReader::with_capacity(
                        CHUNK,
                        Box::new(ThreadedReader::start(file, Arc::clone(progress))?),
                    )
                };
                // How many messages a file holds is not known up front: it may grow
                // while it is read (a recording still being written). Only `--ticks`
                // bounds it.
                (
                    Input::Lines {
                        reader,
                        name,
                        limit: *limit,
                        max_line_bytes,
                        format,
                        stamped: false,
                        symbol: symbol(&[path.file_name().and_then(|n| n.to_str())]),
                        named: kind(&[path.file_name().and_then(|n| n.to_str())]),
                    },
                    *limit,
                )
            }
            Source::Connect { url, limit } => (
                Input::Lines {
                    reader: BufReader::with_capacity(
                        CHUNK,
                        Box::new(ThreadedReader::start(
                            super::live::open(url, &config.live, progress, clock)?,
                            Arc::clone(progress),
                        )?),
                    ),
                    name: url.clone(),
                    limit: *limit,
                    // The stamp does not count against the message's limit.
                    max_line_bytes: max_line_bytes + STAMP_BYTES,
                    format: InputFormat::Json,
                    stamped: true,
                    symbol: None,
                    named: None,
                },
                *limit,
            ),
            Source::Stdin { limit } => (
                Input::Lines {
                    reader: BufReader::with_capacity(
                        CHUNK,
                        Box::new(ThreadedReader::start(
                            std::io::stdin(),
                            Arc::clone(progress),
                        )?),
                    ),
                    name: "standard input".to_owned(),
                    limit: *limit,
                    max_line_bytes,
                    format,
                    stamped: false,
                    symbol: symbol(&[]),
                    named: None,
                },
                *limit,
            ),
        })
    }
}

/// Bytes read from the input at once.
const CHUNK: usize = 1 << 16;

/// Chunks in flight between a [`ThreadedReader`]'s thread and the feed.
const CHUNKS: usize = 4;

/// The longest input line accepted by default (`--max-line-bytes` sets it; after it,
/// the line is counted malformed and the rest of it skipped): the line buffer never
/// grows past the limit, so a line without an end (`/dev/zero`) costs no memory and
/// allocates nothing.
pub const MAX_LINE_BYTES: usize = 1 << 16;

/// How often a feed waiting for input looks whether it was told to stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// An input that may block for ever (standard input, a pipe, a FIFO), read on a
/// thread of its own (`input`), so that a feed told to stop is never stuck in a read
/// whose writer is silent: the feed waits on a channel, with a timeout, and looks at
/// the stop flag between waits. The chunks go round between the two threads
/// ([`CHUNKS`] of [`CHUNK`] bytes, made once), so reading allocates nothing after
/// start-up. A reader thread blocked in a read when the run ends stays blocked until
/// input comes or the process exits.
struct ThreadedReader {
    full: Receiver<std::io::Result<(Vec<u8>, usize)>>,
    empty: Sender<Vec<u8>>,
    chunk: Vec<u8>,
    filled: usize,
    at: usize,
    progress: Arc<Progress>,
    ended: bool,
}

impl ThreadedReader {
    fn start(mut source: impl Read + Send + 'static, progress: Arc<Progress>) -> Result<Self> {
        let (full_tx, full) = crossbeam_channel::bounded(CHUNKS);
        let (empty, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(CHUNKS);
        for _ in 0..CHUNKS {
            let _ = empty.send(vec![0; CHUNK]);
        }
        // Crossbeam allocates a channel's wait list the first time a receiver waits on
        // it: make it here (the reader thread is not started yet, so the channel is
        // empty), so the feed's first wait for input allocates nothing.
        super::until_registered(|wait| {
            let _ = full.recv_timeout(wait);
        });
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                // Its crossbeam wait context now, not at its first wait mid-run.
                super::start_waiting_thread();
                for mut chunk in empty_rx {
                    let read = loop {
                        match source.read(&mut chunk) {
                            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                            other => break other,
                        }
                    };
                    let end = !matches!(read, Ok(n) if n > 0);
                    if full_tx.send(read.map(|n| (chunk, n))).is_err() || end {
                        return;
                    }
                }
            })
            .context("starting the input reader thread")?;
        Ok(ThreadedReader {
            full,
            empty,
            chunk: Vec::new(),
            filled: 0,
            at: 0,
            progress,
            ended: false,
        })
    }
}

impl LineSource for ThreadedReader {
    fn ready(&self) -> bool {
        self.at < self.filled || self.ended || !self.full.is_empty()
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.filled {
            if self.ended {
                return Ok(0);
            }
            if !self.chunk.is_empty() {
                let _ = self.empty.send(std::mem::take(&mut self.chunk));
            }
            match self.full.recv_timeout(STOP_POLL) {
                Ok(Ok((chunk, n))) => {
                    self.chunk = chunk;
                    (self.filled, self.at) = (n, 0);
                    self.ended = n == 0;
                }
                Ok(Err(error)) => {
                    self.ended = true;
                    return Err(error);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.progress.stop_requested().is_some() {
                        // Told to stop: the input ends here for the feed.
                        return Ok(0);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.filled - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What [`read_line`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// A whole line, in the buffer (its newline included, if it had one).
    Complete,
    /// A line of this many bytes, over the limit: skipped, the buffer empty.
    TooLong(usize),
}

/// An input line of `.0` bytes, over the limit `.1`.
#[derive(Clone, Copy, Debug)]
struct LineTooLong(usize, usize);

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a line of {} bytes is longer than the {}-byte limit; skipped",
            self.0, self.1
        )
    }
}

/// Reads the next line into `buffer` without growing it past `max` bytes (its
/// newline included): a longer line is read to its end and dropped. `None` at the end
/// of the input, or when `stopped` says so between two reads (an endless line still
/// ends on a signal).
fn read_line(
    reader: &mut dyn BufRead,
    buffer: &mut Vec<u8>,
    max: usize,
    stopped: &dyn Fn() -> bool,
) -> std::io::Result<Option<Line>> {
    buffer.clear();
    let (mut total, mut too_long) = (0_usize, false);
    loop {
        if total > 0 && stopped() {
            return Ok(None);
        }
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok((total > 0).then_some(if too_long {
                Line::TooLong(total)
            } else {
                Line::Complete
            }));
        }
        let (taken, ended) = match memchr::memchr(b'\n', available) {
            Some(newline) => (newline + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buffer.len() + taken <= max {
                buffer.extend_from_slice(&available[..taken]);
            } else {
                too_long = true;
                buffer.clear();
            }
        }
        total = total.saturating_add(taken);
        reader.consume(taken);
        if ended {
            return Ok(Some(if too_long {
                Line::TooLong(total)
            } else {
                Line::Complete
            }));
        }
    }
}

/// What the feed hands its ticks to, on its own thread (the trading layers).
pub(crate) trait Downstream {
    /// One tick; false if the feed should stop (analysis has gone).
    fn on_tick(&mut self, tick: PoolGuard<'static, Tick>) -> bool;
    /// The feed is waiting for its next message (called on each turn of the wait):
    /// pass on what is held back if that can be done now, never waiting, and say
    /// whether it was ([`Idle::Sent`]) or the feed should stop ([`Idle::Gone`]).
    fn idle(&mut self) -> Idle;
    /// Whether anything is held back that [`Downstream::idle`] would pass on.
    fn holding(&self) -> bool;
}

/// The feed: messages in, each parsed tick handed to `downstream` (the trading layers,
/// on the same thread), told before each wait for the source. Stops at the end of the
/// source, when `downstream` says analysis has gone, or when told to
/// ([`Progress::request_stop`]).
pub(crate) fn feed(
    input: Input,
    clock: Clock,
    downstream: &mut dyn Downstream,
    progress: &Progress,
    pacing: Pacing,
    mut monitor: data::health::FeedMonitor,
    stale_after_ns: u64,
) -> Result<FeedFigures> {
    super::start_stage_thread();
    // Room for every sample, and for the longest line accepted, made once: taking a
    // sample or reading a line never grows them.
    let mut figures = FeedFigures {
        samples: Vec::with_capacity(MALFORMED_SAMPLES),
        ..FeedFigures::default()
    };
    let mut buffer = Vec::with_capacity(match input {
        Input::Generated { .. } => 512,
        Input::Lines { max_line_bytes, .. } => max_line_bytes,
    });
    let pace = Pace::new(&pacing, clock);
    let stamped = matches!(input, Input::Lines { stamped: true, .. });
    figures.schedule = (pace.paced() || stamped).then(Schedule::default);
    // The market's clock: the latest exchange time seen, an outlier held (quotes carry
    // no time, so a symbol quoted only is timed by the others' trades).
    let mut market = data::health::MarketClock::new(stale_after_ns);
    // False when the feed must stop: trading has gone, or a stop was asked for.
    // `stamp`: when the message was received, if its line said.
    let mut forward = |figures: &mut FeedFigures,
                       downstream: &mut dyn Downstream,
                       decoder: &Decoder,
                       message: &[u8],
                       line: u64,
                       stamp: Option<u64>| {
        if let Some(reason) = progress.stop_requested() {
            figures.stopped = Some(reason);
            return false;
        }
        if let Some((at, stall)) = pacing.stall
            && at == line
        {
            // A message late from the source: the feed waits for it.
            if downstream.idle() == Idle::Gone {
                return false;
            }
            std::thread::sleep(stall);
        }
        let Some(waited) = pace.wait_for(line, progress, downstream) else {
            figures.stopped = progress.stop_requested();
            return false;
        };
        let read = clock.now_ns();
        // A paced message was received when it was due; a live one, when its line says.
        let due = waited.due_ns.or(stamp);
        let received = due.unwrap_or(read);
        if let (Some(schedule), Some(due)) = (&mut figures.schedule, due) {
            schedule.lateness.record(read.saturating_sub(due));
            if let Some(stall) = waited.stall_ns {
                schedule.hiccups.record(stall);
                if let Some(interval) = pace.interval() {
                    schedule
                        .hiccups_per_message
                        .record_expected(stall, interval);
                }
            }
        }
        let parsed = match decoder {
            Decoder::Json => data::parse::parse_message(message),
            Decoder::Csv(rows) => rows
                .parse(message)
                .map(|(tick, format)| data::parse::Message::Tick(tick, format)),
        };
        match parsed {
            Ok(data::parse::Message::Tick(mut tick, format)) => {
                tick.local_ts_ns = received;
                tick.sequence = line;
                let market_ns = market.advance(tick.exchange_ts_ns);
                if monitor.observe(&mut tick, format, market_ns).is_some() {
                    figures.health = monitor.counts();
                    progress.set_feed_health(figures.health);
                }
                figures.ticks += 1;
                figures.outcomes.ticks[format as usize] += 1;
                downstream.on_tick(tick)
            }
            Ok(data::parse::Message::Skipped(kind)) => {
                figures.skipped += 1;
                figures.outcomes.skipped[kind as usize] += 1;
                true
            }
            Err(error) => {
                figures.malformed(line, error.kind.reason(), &error, progress);
                true
            }
        }
    };
    match input {
        Input::Generated { seed, ticks: n } => {
            let mut market = MarketGenerator::new(seed);
            let mut generating = 0;
            for line in 1..=n {
                let before = clock.now_ns();
                market.next_message(&mut buffer);
                generating += clock.now_ns().saturating_sub(before);
                if !forward(
                    &mut figures,
                    downstream,
                    &Decoder::Json,
                    &buffer,
                    line,
                    None,
                ) {
                    break;
                }
                figures.lines += 1;
            }
            figures.generator_ns = Some(generating);
        }
        Input::Lines {
            mut reader,
            name,
            limit,
            max_line_bytes,
            format,
            // Read above, for the schedule.
            stamped: _,
            symbol,
            named,
        } => {
            // Chosen at the first line that is not blank.
            let mut decoder = None;
            let mut line = 0;
            let stopped = || progress.stop_requested().is_some();
            while limit.is_none_or(|limit| line < limit) {
                // Every line, blank or not, looks at the stop flag: an input of blank
                // lines never reaches `forward`.
                if let Some(reason) = progress.stop_requested() {
                    figures.stopped = Some(reason);
                    break;
                }
                // Nothing read ahead, and the next read would wait for the source's
                // writer: what the trading layers hold goes on first, as soon as
                // analysis has room for it, unless the source is ready sooner. (A
                // line split across two writes waits with its first part read.)
                if reader.buffer().is_empty() {
                    let mut gone = false;
                    while !reader.get_ref().ready() && downstream.holding() && !stopped() {
                        if downstream.idle() == Idle::Gone {
                            gone = true;
                            break;
                        }
                        std::thread::yield_now();
                    }
                    if gone {
                        break;
                    }
                }
                let read = read_line(&mut reader, &mut buffer, max_line_bytes, &stopped)
                    .with_context(|| format!("reading {name} after line {line}"))?;
                let Some(read) = read else {
                    // The end of the input, or a stop while waiting for it or while
                    // skipping an overlong line.
                    figures.stopped = progress.stop_requested();
                    break;
                };
                line += 1;
                if let Line::TooLong(bytes) = read {
                    let error = LineTooLong(bytes, max_line_bytes);
                    figures.malformed(line, "line_too_long", &error, progress);
                } else {
                    let (stamp, message) = if stamped {
                        split_stamp(&buffer)
                    } else {
                        (None, &buffer[..])
                    };
                    let message = message.trim_ascii();
                    if message.is_empty() {
                        figures.outcomes.blank += 1;
                    } else {
                        let decoder = match &decoder {
                            Some(decoder) => decoder,
                            None => {
                                let (chosen, header) = Decoder::choose(
                                    format,
                                    named,
                                    symbol.as_deref(),
                                    message,
                                    &name,
                                )?;
                                figures.format = Some(chosen.name());
                                let chosen = decoder.insert(chosen);
                                if header {
                                    figures.outcomes.header += 1;
                                    figures.lines += 1;
                                    continue;
                                }
                                chosen
                            }
                        };
                        if !forward(&mut figures, downstream, decoder, message, line, stamp) {
                            break;
                        }
                    }
                }
                figures.lines += 1;
            }
        }
    }
    // Counts that mark no tick (repeated ids) are taken here.
    figures.health = monitor.counts();
    figures.clock_outliers = market.outliers();
    progress.set_feed_health(figures.health);
    Ok(figures)
}

/// The most bytes a receive-time stamp takes: a `u64`'s 20 digits and a space.
const STAMP_BYTES: usize = 21;

/// A stamped line's receive time, and the rest of it (the whole line, unstamped, if
/// it does not start with digits and a space).
fn split_stamp(line: &[u8]) -> (Option<u64>, &[u8]) {
    let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || line.get(digits) != Some(&b' ') {
        return (None, line);
    }
    let stamp = std::str::from_utf8(&line[..digits])
        .ok()
        .and_then(|text| text.parse().ok());
    match stamp {
        Some(stamp) => (Some(stamp), &line[digits + 1..]),
        None => (None, line),
    }
}

/// How the feed is paced.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pacing {
    /// Messages per second (`--rate`), if paced.
    pub(crate) rate: Option<u64>,
    /// A stall before one message ([`crate::Faults::stall_feed`]).
    pub(crate) stall: Option<(u64, Duration)>,
    /// A stall inside the wait for one message ([`crate::Faults::stall_wait`]).
    pub(crate) stall_wait: Option<(u64, Duration)>,
}

/// Paces the feed at a fixed message rate (`--rate`), so latency can be measured
/// below saturation: message `n` is due at `start + n / rate`, and not read before.
#[derive(Debug)]
struct Pace {
    clock: Clock,
    start_ns: u64,
    interval_ns: Option<f64>,
    /// A stall of the host to stage in the spin of the first wait, from its message
    /// on, that spins ([`crate::Faults::stall_wait`]); taken when it is.
    stall_wait: std::cell::Cell<Option<(u64, Duration)>>,
}

impl Pace {
    fn new(pacing: &Pacing, clock: Clock) -> Self {
        Pace {
            clock,
            start_ns: clock.now_ns(),
            stall_wait: std::cell::Cell::new(pacing.stall_wait),
            #[allow(
                clippy::cast_precision_loss,
                reason = "a rate; 2^53 per second is beyond any feed"
            )]
            interval_ns: pacing.rate.filter(|&r| r > 0).map(|r| 1e9 / r as f64),
        }
    }

    fn paced(&self) -> bool {
        self.interval_ns.is_some()
    }

    /// The schedule's interval between two messages, in whole ns (at least 1).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an interval of at most 1 s in ns"
    )]
    fn interval(&self) -> Option<u64> {
        self.interval_ns.map(|ns| (ns as u64).max(1))
    }

    /// Waits until message `message` is due, telling `downstream` on each turn of the
    /// wait ([`Downstream::idle`]); `None` if a stop was asked for meanwhile, or
    /// `downstream` said to stop.
    fn wait_for(
        &self,
        message: u64,
        progress: &Progress,
        downstream: &mut dyn Downstream,
    ) -> Option<Waited> {
        let Some(interval) = self.interval_ns else {
            return Some(Waited::default());
        };
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "nanosecond offsets well inside f64's exact range"
        )]
        let due = self.start_ns + (message as f64 * interval) as u64;
        let mut waited = Waited {
            due_ns: Some(due),
            stall_ns: None,
        };
        // The clock's reading before the last yield or turn of the spin, if the last
        // step was one.
        let mut looked_at = None;
        loop {
            let now = self.clock.now_ns();
            if let Some(before) = looked_at {
                // Two looks at the clock a yield or a turn of the spin apart: beyond
                // a few tens of ns (a spin) or the yield's own cost, time the thread
                // was held off its core.
                let away: u64 = now.saturating_sub(before);
                waited.stall_ns = Some(waited.stall_ns.map_or(away, |s| s.max(away)));
            }
            if now >= due {
                return Some(waited);
            }
            if progress.stop_requested().is_some() {
                return None;
            }
            // Handing a batch on is the pipeline's own time, not the host's, and no
            // hiccup: the clock again after it. A turn that hands nothing on (most
            // turns while analysis has a batch to read) is measured whole, from its
            // first look: a stall inside it is the host's.
            let now = match downstream.idle() {
                Idle::Gone => return None,
                Idle::Quiet => now,
                Idle::Sent => {
                    let now = self.clock.now_ns();
                    if now >= due {
                        looked_at = None;
                        continue;
                    }
                    now
                }
            };
            // Sleep through long gaps (the OS wakes late by ~50-100 µs), in slices
            // short enough to see a stop soon, and, while events are held back
            // (analysis had something left to read), to hand them on soon; yield
            // through short ones, and spin through the last few µs, so the wait
            // ends within a few tens of ns of the due time (tick-to-order p50 at
            // `--rate 100000` 0.56 against 0.88 µs yielding to the end; measured in
            // `docs/pipeline.md`).
            if due - now > 200_000 {
                // The clock again before a sleep: a turn held up (inside the call
                // above) must neither sleep past the due time nor go unmeasured.
                let fresh = self.clock.now_ns();
                if due.saturating_sub(fresh) > 200_000 {
                    let slice = if downstream.holding() {
                        HELD_POLL
                    } else {
                        STOP_POLL
                    };
                    std::thread::sleep(Duration::from_nanos(due - fresh - 100_000).min(slice));
                    looked_at = None;
                } else {
                    // The next look measures the turn, from its first.
                    looked_at = Some(now);
                }
            } else if due - now > SPIN_BEFORE_DUE_NS {
                std::thread::yield_now();
                looked_at = Some(now);
            } else {
                if let Some((at, stall)) = self.stall_wait.get()
                    && message >= at
                {
                    self.stall_wait.set(None);
                    std::thread::sleep(stall);
                }
                std::hint::spin_loop();
                looked_at = Some(now);
            }
        }
    }
}

/// How close to a message's due time a paced feed stops yielding and spins: several
/// times a yield's own cost (0.7-0.8 µs, the per-wait hiccups' p50 when every wait
/// yielded), so the last yield cannot overrun the due time by itself. Above 200,000
/// messages a second the whole wait spins.
const SPIN_BEFORE_DUE_NS: u64 = 5_000;

/// The longest a paced feed sleeps while it holds events back for analysis.
const HELD_POLL: Duration = Duration::from_millis(1);

/// What a wait for a message's time saw.
#[derive(Clone, Copy, Debug, Default)]
struct Waited {
    /// When the message was due (`None` unpaced).
    due_ns: Option<u64>,
    /// The longest the thread was away across one yield or turn of its spin (`None`:
    /// it did neither).
    stall_ns: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A downstream that holds something back, and whose first turn of the wait takes
    /// `stall`: handing a batch on (analysis woken slowly) if `hands_on`, or, with
    /// nothing handed on, the thread held off its core inside the turn.
    struct Stalling {
        stall: Option<Duration>,
        hands_on: bool,
    }

    impl Downstream for Stalling {
        fn on_tick(&mut self, _: PoolGuard<'static, Tick>) -> bool {
            true
        }
        fn idle(&mut self) -> Idle {
            match self.stall.take() {
                Some(stall) => {
                    std::thread::sleep(stall);
                    if self.hands_on {
                        Idle::Sent
                    } else {
                        Idle::Quiet
                    }
                }
                None => Idle::Quiet,
            }
        }
        fn holding(&self) -> bool {
            self.stall.is_some()
        }
    }

    /// The longest hiccup paced waits see, at `rate` messages a second, the first turn
    /// that tells `downstream` taking 10 ms: 20 waits after that turn (the schedule
    /// runs on until a wait makes one, so a test thread held up at the start cannot
    /// skip it).
    fn longest_hiccup(rate: u64, hands_on: bool) -> u64 {
        let pacing = Pacing {
            rate: Some(rate),
            stall: None,
            stall_wait: None,
        };
        let pace = Pace::new(&pacing, Clock::start());
        let progress = Progress::default();
        let mut downstream = Stalling {
            stall: Some(Duration::from_millis(10)),
            hands_on,
        };
        let mut longest = 0;
        let mut after = 0;
        for message in 1..=1_000_000 {
            let waited = pace
                .wait_for(message, &progress, &mut downstream)
                .expect("no stop asked for");
            longest = longest.max(waited.stall_ns.unwrap_or(0));
            if downstream.stall.is_none() {
                after += 1;
                if after == 20 {
                    return longest;
                }
            }
        }
        panic!("no wait made the stalling turn");
    }

    /// The wait's hiccups are the host's: time the feed spends handing a batch on is
    /// its own, and not counted, even when it runs past the due time; a turn that
    /// hands nothing on is the wait's, and a stall inside it is counted.
    /// At 10,000 messages a second the turns yield and spin; at 100 they sleep, and
    /// a stall before the sleep is found by the look at the clock before it.
    /// (9 ms of the 10: the clock is held to the OS's within 0.1% and 200 µs.)
    /// The host's own hiccups are real ones: the hand-off's is the shortest of
    /// three runs, which a hand-off counted as a hiccup would keep at 10 ms in each.
    #[test]
    fn a_slow_hand_off_is_not_a_hiccup_and_a_stall_in_a_quiet_turn_is() {
        for rate in [10_000, 100] {
            let handed_on = (0..3)
                .map(|_| longest_hiccup(rate, true))
                .fold(u64::MAX, u64::min);
            assert!(
                handed_on < 5_000_000,
                "at {rate}/s a 10 ms hand-off counted as a {handed_on} ns hiccup"
            );
            let quiet = longest_hiccup(rate, false);
            assert!(
                quiet >= 9_000_000,
                "at {rate}/s a 10 ms stall in a turn that handed nothing on counted as {quiet} ns"
            );
        }
    }

    /// Analysis gone: the wait stops at once rather than at the due time (2 s away).
    #[test]
    fn a_wait_stops_when_analysis_has_gone() {
        struct Gone;
        impl Downstream for Gone {
            fn on_tick(&mut self, _: PoolGuard<'static, Tick>) -> bool {
                true
            }
            fn idle(&mut self) -> Idle {
                Idle::Gone
            }
            fn holding(&self) -> bool {
                true
            }
        }
        let pacing = Pacing {
            rate: Some(1),
            stall: None,
            stall_wait: None,
        };
        let clock = Clock::start();
        let pace = Pace::new(&pacing, clock);
        let waited = pace.wait_for(2, &Progress::default(), &mut Gone);
        let took = clock.now_ns();
        assert!(waited.is_none(), "the wait ran to the due time");
        assert!(
            took < 1_000_000_000,
            "stopped after {took} ns, for a message due in 2 s"
        );
    }

    #[test]
    fn a_stamp_is_split_from_its_line_and_a_line_without_one_is_left_whole() {
        assert_eq!(
            split_stamp(b"123 {\"e\":1}"),
            (Some(123), &b"{\"e\":1}"[..])
        );
        assert_eq!(split_stamp(b"0 x"), (Some(0), &b"x"[..]));
        for line in [&b"{\"e\":1}"[..], b"123", b"123{", b" 123 x", b""] {
            assert_eq!(split_stamp(line), (None, line), "{line:?}");
        }
        // Past `u64::MAX`: no stamp, the line whole.
        let long = b"99999999999999999999999 x";
        assert_eq!(split_stamp(long), (None, &long[..]));
    }

    fn lines(input: &[u8], chunk: usize) -> Vec<Option<Line>> {
        let mut reader = BufReader::with_capacity(chunk, input);
        let mut buffer = Vec::with_capacity(MAX_LINE_BYTES);
        let mut out = Vec::new();
        loop {
            let read = read_line(&mut reader, &mut buffer, MAX_LINE_BYTES, &|| false).unwrap();
            assert!(
                buffer.capacity() == MAX_LINE_BYTES,
                "the buffer never grows"
            );
            out.push(read);
            if read.is_none() {
                return out;
            }
        }
    }

    /// The limit counts a line's newline: `MAX_LINE_BYTES` bytes in all, whatever the
    /// chunk the reader hands over.
    #[test]
    fn the_line_limit_holds_at_its_boundary_in_any_chunking() {
        let at_limit = [vec![b'x'; MAX_LINE_BYTES - 1], b"\n".to_vec()].concat();
        let over = [vec![b'x'; MAX_LINE_BYTES], b"\n".to_vec()].concat();
        let crlf_at_limit = [vec![b'x'; MAX_LINE_BYTES - 2], b"\r\n".to_vec()].concat();
        let input = [at_limit, over, crlf_at_limit, b"last".to_vec()].concat();
        for chunk in [1, 7, 4096, 1 << 16, 1 << 20] {
            assert_eq!(
                lines(&input, chunk),
                [
                    Some(Line::Complete),
                    Some(Line::TooLong(MAX_LINE_BYTES + 1)),
                    Some(Line::Complete),
                    Some(Line::Complete),
                    None
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_stop_ends_an_endless_line() {
        let endless = std::io::repeat(b'x');
        let mut reader = BufReader::with_capacity(1024, endless);
        let mut buffer = Vec::with_capacity(MAX_LINE_BYTES);
        let calls = std::cell::Cell::new(0);
        let stop_after_a_while = || {
            calls.set(calls.get() + 1);
            calls.get() > 1_000
        };
        assert_eq!(
            read_line(
                &mut reader,
                &mut buffer,
                MAX_LINE_BYTES,
                &stop_after_a_while
            )
            .unwrap(),
            None
        );
    }

    /// A sample keeps what fits, cut at a character with `…`, and all of a short one.
    #[test]
    fn a_sample_is_cut_to_its_room() {
        assert_eq!(sample_of(&"short").as_str(), "short");
        let long = "é".repeat(200);
        let cut = sample_of(&long);
        assert!(cut.len() <= SAMPLE_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
        let exact = "x".repeat(SAMPLE_BYTES);
        assert_eq!(sample_of(&exact).as_str(), exact, "what fits is not cut");
        let over = "x".repeat(SAMPLE_BYTES + 1);
        assert_eq!(sample_of(&over).len(), SAMPLE_BYTES);
    }

    /// Every reason the parser can give has its own counter: the one left out is
    /// `not_a_tick`, the parser's last.
    #[test]
    fn every_parse_reason_is_counted_apart() {
        assert_eq!(data::parse::REASONS.last(), Some(&"not_a_tick"));
        for reason in data::parse::REASONS {
            assert!(
                reason == "not_a_tick" || MALFORMED_REASONS.contains(&reason),
                "{reason}"
            );
        }
        assert_eq!(MALFORMED_REASONS.last(), Some(&"line_too_long"));
    }
}
