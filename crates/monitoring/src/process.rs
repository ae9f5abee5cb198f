//! The standard `process_*` metrics (the names every Prometheus client library uses,
//! so stock dashboards and alerts work unchanged), read from `/proc/self` at each
//! scrape with the `procfs` crate. On other systems the family is absent.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// What `/proc/self` says now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessFigures {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on them (`None`: unlimited).
    pub max_fds: Option<u64>,
    /// OS threads.
    pub threads: u64,
    /// When the process started, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessFigures {
    /// Reads them, or says why it could not (no `/proc`, a permission).
    ///
    /// # Errors
    /// `/proc/self` could not be read or parsed.
    #[cfg(target_os = "linux")]
    pub fn read() -> Result<Self, String> {
        use procfs::process::{LimitValue, Process};
        let me = Process::myself().map_err(|e| e.to_string())?;
        let stat = me.stat().map_err(|e| e.to_string())?;
        let ticks = procfs::ticks_per_second();
        let boot = procfs::boot_time_secs().map_err(|e| e.to_string())?;
        #[allow(clippy::cast_precision_loss, reason = "seconds for Prometheus")]
        let seconds = |clock_ticks: u64| clock_ticks as f64 / ticks as f64;
        let max_fds = match me
            .limits()
            .map_err(|e| e.to_string())?
            .max_open_files
            .soft_limit
        {
            LimitValue::Unlimited => None,
            LimitValue::Value(n) => Some(n),
        };
        #[allow(clippy::cast_precision_loss, reason = "seconds for Prometheus")]
        let start_time_seconds = boot as f64 + seconds(stat.starttime);
        Ok(ProcessFigures {
            cpu_seconds: seconds(stat.utime + stat.stime),
            resident_bytes: stat.rss * procfs::page_size(),
            virtual_bytes: stat.vsize,
            open_fds: me.fd_count().map_err(|e| e.to_string())? as u64,
            max_fds,
            threads: u64::try_from(stat.num_threads).unwrap_or(0),
            start_time_seconds,
        })
    }

    /// Not available here.
    ///
    /// # Errors
    /// Always: only Linux has `/proc/self`.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> Result<Self, String> {
        Err("process metrics need Linux's /proc".to_owned())
    }
}

/// Encodes [`ProcessFigures`] at each scrape. Registered without the namespace
/// prefix: `process_cpu_seconds_total`, `process_resident_memory_bytes`, … keep their
/// conventional names.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let figures = match ProcessFigures::read() {
            Ok(figures) => figures,
            Err(error) => {
                tracing::debug!(%error, "no process metrics");
                return Ok(());
            }
        };
        ConstCounter::new(figures.cpu_seconds).encode(encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?)?;
        #[allow(clippy::cast_precision_loss, reason = "gauges are f64 in Prometheus")]
        let gauges = [
            (
                "process_resident_memory",
                "Resident memory size. It does not fall when the pools free memory: the allocator keeps freed pages for reuse (see docs/monitoring.md).",
                Some(Unit::Bytes),
                figures.resident_bytes as f64,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size.",
                Some(Unit::Bytes),
                figures.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Open file descriptors.",
                None,
                figures.open_fds as f64,
            ),
            (
                "process_threads",
                "OS threads in the process.",
                None,
                figures.threads as f64,
            ),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch.",
                Some(Unit::Seconds),
                figures.start_time_seconds,
            ),
        ];
        for (name, help, unit, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                MetricType::Gauge,
            )?)?;
        }
        if let Some(max) = figures.max_fds {
            #[allow(clippy::cast_precision_loss, reason = "gauges are f64 in Prometheus")]
            ConstGauge::new(max as f64).encode(encoder.encode_descriptor(
                "process_max_fds",
                "Most open file descriptors allowed (the soft limit).",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}
