//! The feed stage: messages in (generated, a file, or standard input), parsed ticks out.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use data::generate::MarketGenerator;
use infrastructure::memory::PoolGuard;
use infrastructure::types::Tick;
use serde::Serialize;

use super::Clock;
use crate::config::{MALFORMED_SAMPLES, Source};
use crate::{Progress, StopReason};

/// Fewer bytes than any message the parser accepts (the shortest, a bookTicker with
/// one-character values, `{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}`, has 47):
/// bounds how many ticks a file of a given size can hold.
const MIN_MESSAGE_BYTES: u64 = 32;

/// An input line that did not parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// What was wrong, with the byte offset.
    pub error: String,
}

/// What the feed did.
#[derive(Debug, Default)]
pub struct FeedFigures {
    /// Input lines read (generated messages count as lines).
    pub lines: u64,
    /// Ticks parsed and sent on.
    pub ticks: u64,
    /// Lines that failed to parse.
    pub malformed: u64,
    /// The first [`MALFORMED_SAMPLES`] of them.
    pub samples: Vec<MalformedLine>,
    /// Why the feed stopped before the end of its source, if it did.
    pub stopped: Option<StopReason>,
}

impl FeedFigures {
    fn malformed(&mut self, line: u64, error: &data::parse::ParseError, progress: &Progress) {
        self.malformed += 1;
        progress.count_malformed();
        tracing::debug!(line, %error, "malformed market-data line");
        if self.samples.len() < MALFORMED_SAMPLES {
            self.samples.push(MalformedLine {
                line,
                error: error.to_string(),
            });
        }
    }
}

/// A source, opened: the feed thread reads it.
pub(crate) enum Input {
    /// The seeded generator.
    Generated { seed: u64, ticks: u64 },
    /// Lines from a reader.
    Lines {
        reader: Box<dyn BufRead + Send>,
        name: String,
        limit: Option<u64>,
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
    /// window rows reserved up front): the limit, or one per [`MIN_MESSAGE_BYTES`] of
    /// a file, or `None` for standard input without a limit.
    pub(crate) fn open(source: &Source, progress: &Arc<Progress>) -> Result<(Input, Option<u64>)> {
        Ok(match source {
            Source::Generated { seed, ticks } => (
                Input::Generated {
                    seed: *seed,
                    ticks: *ticks,
                },
                Some(*ticks),
            ),
            Source::File { path, limit } => {
                let file =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                let bytes = file.metadata().map_or(u64::MAX, |m| m.len());
                let most = bytes / MIN_MESSAGE_BYTES + 1;
                (
                    Input::Lines {
                        reader: Box::new(BufReader::with_capacity(1 << 16, file)),
                        name: path.display().to_string(),
                        limit: *limit,
                    },
                    Some(limit.map_or(most, |limit| limit.min(most))),
                )
            }
            Source::Stdin { limit } => (
                Input::Lines {
                    reader: Box::new(BufReader::with_capacity(
                        STDIN_CHUNK,
                        StdinReader::start(Arc::clone(progress))?,
                    )),
                    name: "standard input".to_owned(),
                    limit: *limit,
                },
                *limit,
            ),
        })
    }
}

/// Bytes read from standard input at once.
const STDIN_CHUNK: usize = 1 << 16;

/// Chunks of standard input in flight between its reader thread and the feed.
const STDIN_CHUNKS: usize = 4;

/// How often a feed waiting for standard input looks whether it was told to stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Standard input, read on a thread of its own (`stdin`), so that a feed told to stop
/// is never stuck in a read of a pipe whose writer is silent: the feed waits on a
/// channel, with a timeout, and looks at the stop flag between waits. The chunks go
/// round between the two threads ([`STDIN_CHUNKS`] of [`STDIN_CHUNK`] bytes, made
/// once), so reading allocates nothing after start-up. A reader thread blocked in a
/// read when the run ends stays blocked until input comes or the process exits.
struct StdinReader {
    full: Receiver<std::io::Result<(Vec<u8>, usize)>>,
    empty: Sender<Vec<u8>>,
    chunk: Vec<u8>,
    filled: usize,
    at: usize,
    progress: Arc<Progress>,
    ended: bool,
}

impl StdinReader {
    fn start(progress: Arc<Progress>) -> Result<Self> {
        let (full_tx, full) = crossbeam_channel::bounded(STDIN_CHUNKS);
        let (empty, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(STDIN_CHUNKS);
        for _ in 0..STDIN_CHUNKS {
            let _ = empty.send(vec![0; STDIN_CHUNK]);
        }
        // Crossbeam allocates a channel's wait list the first time a receiver waits on
        // it: wait once here, so the feed's first wait for input (at whatever moment of
        // the run) allocates nothing.
        let _ = full.recv_timeout(Duration::from_millis(1));
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                for mut chunk in empty_rx {
                    let read = loop {
                        match stdin.read(&mut chunk) {
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
            .context("starting the standard input reader")?;
        Ok(StdinReader {
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

impl Read for StdinReader {
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

/// The feed stage: messages in, parsed ticks out. Stops at the end of the source, when
/// the trading stage has gone, or when told to ([`Progress::request_stop`]).
pub(crate) fn feed(
    input: Input,
    clock: Clock,
    ticks: &Sender<PoolGuard<'static, Tick>>,
    progress: &Progress,
    rate: Option<u64>,
) -> Result<FeedFigures> {
    super::start_stage_thread();
    let mut figures = FeedFigures::default();
    let mut buffer = Vec::with_capacity(512);
    let pace = Pace::new(rate, clock);
    // False when the feed must stop: trading has gone, or a stop was asked for.
    let forward = |figures: &mut FeedFigures, message: &[u8], line: u64| {
        if let Some(reason) = progress.stop_requested() {
            figures.stopped = Some(reason);
            return false;
        }
        if !pace.wait_for(line, progress) {
            figures.stopped = progress.stop_requested();
            return false;
        }
        let received = clock.now_ns();
        match data::parse::parse(message) {
            Ok(mut tick) => {
                tick.local_ts_ns = received;
                tick.sequence = line;
                figures.ticks += 1;
                ticks.send(tick).is_ok()
            }
            Err(error) => {
                figures.malformed(line, &error, progress);
                true
            }
        }
    };
    match input {
        Input::Generated { seed, ticks: n } => {
            let mut market = MarketGenerator::new(seed);
            for line in 1..=n {
                market.next_message(&mut buffer);
                if !forward(&mut figures, &buffer, line) {
                    break;
                }
                figures.lines += 1;
            }
        }
        Input::Lines {
            mut reader,
            name,
            limit,
        } => {
            let mut line = 0;
            while limit.is_none_or(|limit| line < limit) {
                buffer.clear();
                let read = reader
                    .read_until(b'\n', &mut buffer)
                    .with_context(|| format!("reading {name} after line {line}"))?;
                if read == 0 {
                    // The end of the input, or a stop while waiting for it.
                    figures.stopped = progress.stop_requested();
                    break;
                }
                line += 1;
                let message = buffer.trim_ascii();
                if !message.is_empty() && !forward(&mut figures, message, line) {
                    break;
                }
                figures.lines += 1;
            }
        }
    }
    Ok(figures)
}

/// Paces the feed at a fixed message rate (`--rate`), so latency can be measured
/// below saturation: message `n` is not read before `start + n / rate`.
#[derive(Debug)]
struct Pace {
    clock: Clock,
    start_ns: u64,
    interval_ns: Option<f64>,
}

impl Pace {
    fn new(rate: Option<u64>, clock: Clock) -> Self {
        Pace {
            clock,
            start_ns: clock.now_ns(),
            #[allow(
                clippy::cast_precision_loss,
                reason = "a rate; 2^53 per second is beyond any feed"
            )]
            interval_ns: rate.filter(|&r| r > 0).map(|r| 1e9 / r as f64),
        }
    }

    /// Waits until message `message` is due; false if a stop was asked for meanwhile.
    fn wait_for(&self, message: u64, progress: &Progress) -> bool {
        let Some(interval) = self.interval_ns else {
            return true;
        };
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "nanosecond offsets well inside f64's exact range"
        )]
        let due = self.start_ns + (message as f64 * interval) as u64;
        loop {
            let now = self.clock.now_ns();
            if now >= due {
                return true;
            }
            if progress.stop_requested().is_some() {
                return false;
            }
            // Sleep through long gaps (the OS wakes late by ~50-100 µs), in slices
            // short enough to see a stop soon; yield on short gaps.
            if due - now > 200_000 {
                let nap = Duration::from_nanos(due - now - 100_000).min(STOP_POLL);
                std::thread::sleep(nap);
            } else {
                std::thread::yield_now();
            }
        }
    }
}
