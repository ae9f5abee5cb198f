//! The trading layers: strategy → risk → execution → venue, per tick, on the critical
//! thread (after the feed's parse, with no hand-off).

use anyhow::{Context as _, Result};
use exchange::{ReportKind, Venue, VenueCounts, VenueOutput};
use execution::Executor;
use infrastructure::memory::PoolGuard;
use infrastructure::types::{RejectReason, RiskDecision, Tick};
use risk::{KillSwitch, RiskCounts, RiskEngine};
use strategy::Crossover;

use super::{Clock, Event, Events};
use crate::config::TradingSettings;

/// The trading layers, built (and validated) before any thread starts.
#[derive(Debug)]
pub(crate) struct Layers {
    strategy: Crossover,
    risk: RiskEngine,
    executor: Executor,
    venue: Venue,
}

impl Layers {
    pub(crate) fn new(settings: &TradingSettings) -> Result<Self> {
        Ok(Layers {
            strategy: Crossover::new(settings.strategy.clone()).context("strategy settings")?,
            risk: RiskEngine::new(settings.limits, KillSwitch::default()).context("risk limits")?,
            executor: Executor::new(settings.execution.clone()).context("execution settings")?,
            venue: Venue::new(settings.venue).context("venue settings")?,
        })
    }
}

/// What the trading stage did.
#[derive(Debug, Default)]
pub struct TradingFigures {
    /// Signals the strategy emitted.
    pub signals: u64,
    /// Risk verdicts by reason.
    pub risk: RiskCounts,
    /// Orders created by execution.
    pub orders_created: u64,
    /// Approved signals that did not become orders.
    pub execution_errors: u64,
    /// Venue totals.
    pub venue: VenueCounts,
    /// Orders still open at the end of the replay, then canceled by the venue.
    pub open_at_close: u64,
    /// Times the strategy restarted a symbol's averages after a feed fault.
    pub strategy_restarts: u64,
    /// The critical thread's waits for room in the channel to analysis.
    pub room_waits: analysis::LatencySummary,
}

/// The trading layers run on the critical thread, one tick at a time, straight after
/// the feed parsed it: strategy → risk → execution → venue, with no hand-off between
/// them or before them. What they produce goes to the analysis thread.
pub(crate) struct Trading<'a> {
    layers: Layers,
    clock: Clock,
    events: Events<'a>,
    progress: &'a crate::Progress,
    /// [`Faults::allocate_every`](crate::Faults::allocate_every).
    allocate_every: u64,
    out: VenueOutput,
    figures: TradingFigures,
    /// The market's own clock (trade timestamps; quotes carry none) drives the venue
    /// and the rate limits, so a replay makes the same decisions at any speed.
    market: data::health::MarketClock,
    market_ns: u64,
    seen: u64,
}

impl<'a> Trading<'a> {
    /// Room for the venue's output made here, once.
    pub(crate) fn new(
        layers: Layers,
        clock: Clock,
        events: Events<'a>,
        progress: &'a crate::Progress,
        allocate_every: u64,
        max_clock_jump_ns: u64,
    ) -> Self {
        Trading {
            layers,
            clock,
            events,
            progress,
            allocate_every,
            out: VenueOutput::with_capacity(1_024, 1_024),
            figures: TradingFigures::default(),
            market: data::health::MarketClock::new(max_clock_jump_ns),
            market_ns: 0,
            seen: 0,
        }
    }

    /// One tick through the layers, then on to analysis with what it caused; false
    /// if analysis has gone (the feed should stop).
    pub(crate) fn on_tick(&mut self, tick: PoolGuard<'static, Tick>) -> bool {
        let (clock, progress) = (self.clock, self.progress);
        let events = &mut self.events;
        let trading_in_ns = clock.now_ns();
        self.seen += 1;
        if self.allocate_every != 0 && self.seen.is_multiple_of(self.allocate_every) {
            drop(std::hint::black_box(Box::new(self.seen)));
        }
        let layers = &mut self.layers;
        let market_ns = self.market.advance(tick.exchange_ts_ns);
        self.market_ns = market_ns;
        layers.venue.on_tick(&tick, market_ns, &mut self.out);
        let fault = tick.feed_fault.is_some();
        layers.risk.on_tick(&tick, market_ns);
        let signal = layers.strategy.on_tick(&tick, clock.now_ns());
        if fault {
            progress.set_feed_reactions(
                layers.risk.counts().feed_unhealthy,
                layers.strategy.restarts(),
            );
        }
        if let Some(mut signal) = signal {
            let mut order_ns = None;
            let decision = layers.risk.check(&mut signal, market_ns);
            if decision == RiskDecision::Rejected(RejectReason::FeedUnhealthy) {
                progress.set_feed_reactions(
                    layers.risk.counts().feed_unhealthy,
                    layers.strategy.restarts(),
                );
            }
            if decision == RiskDecision::Approved {
                match layers.executor.on_signal(&signal, clock.now_ns()) {
                    Ok(order) => {
                        order_ns = Some(order.local_ts_ns);
                        layers.venue.submit(order, market_ns, &mut self.out);
                    }
                    Err(error) => {
                        self.figures.execution_errors += 1;
                        // Risk counted the approval as working quantity: no order will
                        // fill or close it, so give it back now.
                        if let Some(side) = signal.side {
                            layers
                                .risk
                                .on_order_closed(signal.symbol_key(), side, signal.quantity);
                        }
                        tracing::warn!(%error, "approved signal without an order");
                    }
                }
            }
            if !events.send(Event::Signal { signal, order_ns }) {
                return false;
            }
        }
        if !drain(layers, &mut self.out, events) {
            return false;
        }
        let trading_out_ns = clock.now_ns();
        let tick = Event::Tick {
            tick,
            trading_in_ns,
            trading_out_ns,
        };
        events.send(tick)
    }

    /// The end of the session: the venue cancels what is still open.
    pub(crate) fn finish(mut self) -> TradingFigures {
        let layers = &mut self.layers;
        let mut figures = self.figures;
        figures.open_at_close = layers.venue.open_orders() as u64;
        layers.venue.cancel_all(self.market_ns, &mut self.out);
        drain(layers, &mut self.out, &mut self.events);
        self.events.flush();
        figures.room_waits = self.events.room_waits();
        figures.signals = layers.strategy.signals_emitted();
        figures.risk = layers.risk.counts();
        figures.orders_created = layers.executor.orders_created();
        figures.venue = layers.venue.counts();
        figures.strategy_restarts = layers.strategy.restarts();
        self.progress
            .set_feed_reactions(figures.risk.feed_unhealthy, figures.strategy_restarts);
        figures
    }
}

impl super::feed::Downstream for Trading<'_> {
    fn on_tick(&mut self, tick: PoolGuard<'static, Tick>) -> bool {
        Trading::on_tick(self, tick)
    }

    fn idle(&mut self) -> super::Idle {
        self.events.idle()
    }

    fn holding(&self) -> bool {
        self.events.holding()
    }
}

/// Feeds the venue's output back to risk and on to analysis; false if analysis has gone.
fn drain(layers: &mut Layers, out: &mut VenueOutput, events: &mut Events<'_>) -> bool {
    for report in out.reports.drain(..) {
        if let (ReportKind::Fill { price, quantity }, Some(side)) = (report.kind, report.side) {
            layers.risk.on_fill(&report.symbol, side, quantity);
            let fill = Event::Fill {
                symbol: report.symbol,
                side,
                price,
                quantity,
            };
            if !events.send(fill) {
                return false;
            }
        }
    }
    for order in out.closed.drain(..) {
        if let (Some(side), Some(unfilled)) = (order.side, order.remaining_quantity()) {
            layers
                .risk
                .on_order_closed(order.symbol_key(), side, unfilled);
        }
        if !events.send(Event::Closed(order)) {
            return false;
        }
    }
    true
}
